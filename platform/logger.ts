import pino, { type Logger } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'webhookUrl',
  '*.webhookUrl',
  'apiKey',
  '*.apiKey',
  'bearerToken',
  '*.bearerToken',
  '*.*.token',
  '*.*.authorization',
  '*.*.password',
  '*.*.secret',
];

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
}

/** Options for a Fastify server's own pino logger: request logs never carry the bearer token. */
export function httpLoggerOptions(level: string) {
  return { level, redact: { paths: ['req.headers.authorization'], censor: '[redacted]' } };
}
