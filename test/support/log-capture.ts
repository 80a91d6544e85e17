import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A JSON logger at `info` that appends each line it writes to `lines`, for tests that read logs. */
export function capturingLogger(lines: string[]): Logger {
  return pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
}
