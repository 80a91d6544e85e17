/**
 * What our commands and services do at the process boundary: print a failure the same way
 * everywhere (one `error: field: rule` line per bad field), and run a server until a signal.
 */
import { ValidationError } from '../core/validation';
import { messageOf } from '../core/errors';

/** Writes `error: field: rule` per issue of a ValidationError, else `error: <message>`. */
export function writeErrorLines(error: unknown): void {
  if (error instanceof ValidationError) {
    for (const issue of error.issues) process.stderr.write(`error: ${issue.field}: ${issue.rule}\n`);
  } else process.stderr.write(`error: ${messageOf(error)}\n`);
}

/**
 * Starts a server, prints `<name> ready <url>` (the line a supervisor such as the local stack
 * waits for), closes it on SIGTERM/SIGINT and exits 0; a failed start prints why and exits 2.
 */
export function serveUntilSignal(
  name: string,
  start: () => Promise<{ url: string; close(): Promise<void> }>,
): void {
  start().then(
    (server) => {
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      process.stdout.write(`${name} ready ${server.url}\n`);
    },
    (error: unknown) => {
      writeErrorLines(error);
      process.exit(2);
    },
  );
}
