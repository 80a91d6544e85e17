/**
 * `canary analyze`: replays recorded samples through an analysis method offline, so users can
 * tune alpha, tolerances and the method on data they recorded. Lines may carry `regime` and/or
 * `share`: the replay then gives the verdicts a live rollout in those regimes would. Exit 0
 * whatever the verdicts, 2 on bad input (the line number and the field).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { formatReplay, parseRecording, replay } from '../../analysis/replay';
import { ANALYSIS_METHODS, type AnalysisMethod } from '../../rollout/spec';
import { FieldReader } from '../../core/validation';
import { CliError } from '../errors';

interface AnalyzeOptions {
  input: string;
  method: string;
  alpha: string;
  json?: boolean;
}

async function readLines(input: string): Promise<string[]> {
  if (input !== '-') {
    if (!existsSync(input)) throw new CliError(`--input: ${input} does not exist`);
    if (!statSync(input).isFile()) throw new CliError(`--input: ${input} is not a file`);
  }
  const stream = input === '-' ? process.stdin : createReadStream(input, { encoding: 'utf8' });
  const lines: string[] = [];
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) lines.push(line);
  return lines;
}

export function register(program: Command): void {
  program
    .command('analyze')
    .description('Replay recorded samples (NDJSON) through an analysis method and print the verdict per tick')
    .requiredOption(
      '--input <file>',
      'NDJSON samples, one per line, optionally with "regime" and/or "share" ("-" reads standard input)',
    )
    .option('--method <method>', `analysis method: ${ANALYSIS_METHODS.join(', ')}`, 'betting')
    .option('--alpha <alpha>', 'family-wise false-detection probability, in (0, 0.5]', '0.05')
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: AnalyzeOptions) => {
      const r = new FieldReader();
      const method = r.oneOf(options.method, '--method', ANALYSIS_METHODS);
      const alpha = r.number(Number(options.alpha), '--alpha', { exclusiveMin: 0, max: 0.5 });
      r.throwIfAny();
      const { samples, marks } = parseRecording(await readLines(options.input));
      const result = replay(samples, method as AnalysisMethod, alpha as number, undefined, marks);
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : formatReplay(result));
    });
}
