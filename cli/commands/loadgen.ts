/**
 * `canary loadgen`: replays behaviour profiles against one target, or baseline and canary in
 * pairs. A live progress line on a terminal, NDJSON snapshots with --json, and a final table per
 * action. Bad flags exit 2 with `error: --flag: rule` before any request is sent.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { MongoClient } from 'mongodb';
import { FieldReader, parseDuration, ValidationError, type Json } from '../../core/validation';
import { TargetAllowlist } from '../../loadgen/allowlist';
import {
  LOADGEN_VARIABLES,
  loadLimitsOf,
  resolveLoadOptions,
  type LoadOptions,
  type LoadTarget,
} from '../../loadgen/options';
import { MONGO_VARIABLES, ONTOLOGY_VARIABLE, readConfig } from '../../platform/config';
import {
  defaultOntology,
  loadOntology,
  profilesByCriteria,
  profilesById,
  PROFILE_ID_LIST,
  profilesFromFile,
  sessionsFromProfiles,
  type Ontology,
  type ReplayableProfile,
} from '../../loadgen/profile-sessions';
import { playPlan, type LoadSnapshot } from '../../loadgen/run-load';
import { formatProgress, formatSummaryTable } from '../../loadgen/report';
import { summarize } from '../../loadgen/stats';

interface LoadgenFlags {
  profiles?: string;
  target?: string;
  baseline?: string;
  canary?: string;
  duration: string;
  concurrency: string;
  open?: boolean;
  rate?: string;
  arrival?: string;
  timeScale?: string;
  seed?: string;
  timeout?: string;
  maxRedirects?: string;
  threads?: string;
  insecure?: boolean;
  ca?: string;
  header: string[];
  tag: string[];
  tagHeader: boolean;
  sample: string;
  ontology?: string;
  mongoUri?: string;
  db?: string;
  allow: string[];
  interval?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('loadgen')
    .description('Replay behaviour profiles against a target, or against baseline and canary in pairs')
    .requiredOption(
      '--profiles <spec>',
      'a profiles file (JSON/NDJSON), comma-separated profile ids, or JSON criteria',
    )
    .option('--target <url>', 'the one target to load')
    .option('--baseline <url>', 'baseline of a paired probe (with --canary)')
    .option('--canary <url>', 'canary of a paired probe (with --baseline)')
    .option('--duration <seconds>', 'how long to play, seconds (or 500ms, 2m)', '30')
    .option('--concurrency <n>', 'virtual users (open model: most sessions in flight)', '10')
    .option('--open', 'open model: sessions arrive at --rate whatever the target does')
    .option('--rate <n>', 'open model: session arrivals per second')
    .option('--arrival <process>', 'open model: uniform or poisson arrivals', 'uniform')
    .option('--time-scale <x>', "multiplies the profiles' recorded think times (0: none)", '1')
    .option('--seed <n>', 'seed of the workload schedule', '1')
    .option('--timeout <duration>', 'per-request timeout (e.g. 10s)', '10s')
    .option('--max-redirects <n>', 'redirects followed per request (0: none)', '5')
    .option('--threads <n>', 'engine threads (default: one per 100 virtual users, at most the CPUs)')
    .option('--insecure', 'accept any TLS certificate')
    .option('--ca <file>', 'PEM CA certificates to trust for https targets')
    .option('--header <name:value>', 'extra request header (repeatable)', collect, [])
    .option(
      '--tag <key=value>',
      'label of the run, sent in the tag header and snapshots (repeatable)',
      collect,
      [],
    )
    .option('--no-tag-header', 'do not mark requests with the x-canary-probe header')
    .option('--sample <n>', 'with criteria: how many profiles to sample', '100')
    .option('--ontology <file>', 'action ontology (env CANARY_ONTOLOGY, default: the shop ontology)')
    .option('--mongo-uri <uri>', 'profile store for ids and criteria (default CANARY_MONGO_URI)')
    .option('--db <name>', 'database of the profile store (default CANARY_MONGO_DB or canary)')
    .option(
      '--allow <host|cidr>',
      'add to the target allowlist (default LOADGEN_ALLOWED_TARGETS or loopback)',
      collect,
      [],
    )
    .option('--interval <seconds>', 'snapshot interval (default 1 on a terminal, 5 otherwise)')
    .option('--json', 'NDJSON snapshots on stdout, then the result')
    .action(async (flags: LoadgenFlags) => {
      process.exitCode = await runLoadgen(flags);
    });
}

function readNumber(
  r: FieldReader,
  text: string | undefined,
  field: string,
  bounds: Parameters<FieldReader['number']>[2],
) {
  if (text === undefined) return undefined;
  return r.number(text.trim() === '' ? NaN : Number(text), field, bounds);
}

function readSeconds(r: FieldReader, text: string, field: string): number | undefined {
  const ms = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined) return r.fail(field, 'must be seconds (30) or a duration such as 500ms, 30s or 2m');
  return Math.round(ms);
}

function readPairs(
  r: FieldReader,
  values: string[],
  field: string,
  separator: string,
): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf(separator);
    if (at <= 0) r.fail(field, `must look like name${separator}value (got ${JSON.stringify(value)})`);
    else pairs[value.slice(0, at).trim()] = value.slice(at + 1).trim();
  }
  return pairs;
}

const ENVIRONMENT = { ...MONGO_VARIABLES, ontologyFile: ONTOLOGY_VARIABLE, ...LOADGEN_VARIABLES };

async function runLoadgen(flags: LoadgenFlags): Promise<number> {
  // The environment, read once: a flag wins over its variable, and a bad value names either.
  const settings = readConfig(process.env, ENVIRONMENT, {
    flags: {
      mongoUri: ['--mongo-uri', flags.mongoUri],
      mongoDb: ['--db', flags.db],
      ontologyFile: ['--ontology', flags.ontology],
    },
  });
  const r = new FieldReader();
  const durationMs = readSeconds(r, flags.duration, '--duration');
  const concurrency = readNumber(r, flags.concurrency, '--concurrency', { min: 1, integer: true });
  const rate = readNumber(r, flags.rate, '--rate', { exclusiveMin: 0 });
  if (flags.open && flags.rate === undefined) r.fail('--rate', 'is required with --open');
  if (!flags.open && flags.rate !== undefined)
    r.fail('--rate', 'needs --open (the closed model has no rate)');
  const timeScale = readNumber(r, flags.timeScale, '--time-scale', { min: 0 });
  const seed = readNumber(r, flags.seed, '--seed', { min: 0, integer: true });
  const timeoutMs = flags.timeout === undefined ? undefined : readSeconds(r, flags.timeout, '--timeout');
  const maxRedirects = readNumber(r, flags.maxRedirects, '--max-redirects', { min: 0, integer: true });
  const threads = readNumber(r, flags.threads, '--threads', { min: 1, integer: true });
  const sample = readNumber(r, flags.sample, '--sample', { min: 1, max: 100_000, integer: true });
  const intervalMs =
    flags.interval === undefined
      ? process.stderr.isTTY && !flags.json
        ? 1000
        : 5000
      : readSeconds(r, flags.interval, '--interval');
  const headers = readPairs(r, flags.header, '--header', ':');
  const tags = readPairs(r, flags.tag, '--tag', '=');

  let targets: LoadTarget[] = [];
  if (flags.target !== undefined) {
    if (flags.baseline !== undefined || flags.canary !== undefined)
      r.fail('--target', 'cannot be combined with --baseline/--canary');
    targets = [{ name: 'target', url: flags.target, field: '--target' }];
  } else if (flags.baseline !== undefined || flags.canary !== undefined) {
    if (flags.baseline === undefined) r.fail('--baseline', 'is required with --canary');
    if (flags.canary === undefined) r.fail('--canary', 'is required with --baseline');
    targets = [
      { name: 'baseline', url: flags.baseline ?? '', field: '--baseline' },
      { name: 'canary', url: flags.canary ?? '', field: '--canary' },
    ];
  } else r.fail('--target', 'is required (or --baseline and --canary)');

  let ca: string | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = readFileSync(flags.ca, 'utf8');
    } catch (error) {
      r.fail('--ca', `cannot read ${flags.ca}: ${(error as Error).message}`);
    }
  }
  const allowlist = new TargetAllowlist([...settings.allowedTargets.entries, ...flags.allow], '--allow');
  r.throwIfAny();

  const ontology = settings.ontologyFile ? loadOntology(settings.ontologyFile) : defaultOntology();
  const profiles = await loadProfiles(flags, settings, ontology, sample ?? 100, seed ?? 1);
  const sessions = sessionsFromProfiles(profiles, ontology, '--profiles');

  const options: LoadOptions = {
    sessions,
    targets,
    durationMs: durationMs!,
    concurrency: concurrency!,
    model: flags.open ? 'open' : 'closed',
    ...(rate !== undefined ? { rate } : {}),
    arrival: flags.arrival as LoadOptions['arrival'],
    timeScale: timeScale!,
    seed: seed!,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    maxRedirects: maxRedirects!,
    ...(threads !== undefined ? { threads } : {}),
    tls: { insecure: flags.insecure ?? false, ...(ca ? { ca } : {}) },
    headers,
    tags,
    tagHeader: flags.tagHeader ? 'x-canary-probe' : null,
    snapshotIntervalMs: intervalMs!,
  };
  const plan = await resolveLoadOptions(options, {
    limits: loadLimitsOf(settings),
    allowlist,
    names: {
      durationMs: '--duration',
      concurrency: '--concurrency',
      rate: '--rate',
      arrival: '--arrival',
      timeScale: '--time-scale',
      seed: '--seed',
      timeoutMs: '--timeout',
      maxRedirects: '--max-redirects',
      threads: '--threads',
      headers: '--header',
      tags: '--tag',
      snapshotIntervalMs: '--interval',
      targets: '--target',
      sessions: '--profiles',
      tls: '--ca',
    },
  });

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const live = process.stderr.isTTY && !flags.json;
  try {
    const result = await playPlan(
      plan,
      (snapshot: LoadSnapshot) => {
        if (flags.json) process.stdout.write(`${JSON.stringify({ type: 'snapshot', ...snapshot })}\n`);
        else if (live && !snapshot.final)
          process.stderr.write(`\r\u001b[2K${formatProgress(snapshot, plan.durationMs)}`);
      },
      controller.signal,
    );
    if (live) process.stderr.write('\r\u001b[2K');
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ type: 'result', ...result })}\n`);
    } else {
      process.stdout.write(formatSummaryTable(summarize(result.stats, result.elapsedMs), result));
    }
    return result.status === 'cancelled' ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function loadProfiles(
  flags: LoadgenFlags,
  store: { mongoUri: string; mongoDb: string },
  ontology: Ontology,
  sampleSize: number,
  seed: number,
): Promise<ReplayableProfile[]> {
  const spec = (flags.profiles ?? '').trim();
  if (spec === '') throw new ValidationError([{ field: '--profiles', rule: 'must not be empty' }]);
  if (!spec.startsWith('{') && existsSync(spec)) return profilesFromFile(spec, ontology, '--profiles');
  let criteria: Record<string, Json> | undefined;
  if (spec.startsWith('{')) {
    try {
      criteria = JSON.parse(spec) as Record<string, Json>;
    } catch {
      throw new ValidationError([
        { field: '--profiles', rule: 'looks like JSON criteria but does not parse' },
      ]);
    }
  } else if (!PROFILE_ID_LIST.test(spec)) {
    throw new ValidationError([
      {
        field: '--profiles',
        rule: `must be an existing file, comma-separated profile ids, or JSON criteria (got ${JSON.stringify(spec)})`,
      },
    ]);
  }
  const uri = store.mongoUri;
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    try {
      await client.connect();
    } catch (error) {
      throw new ValidationError([
        {
          field: '--mongo-uri',
          rule: `cannot reach the profile store at ${withoutCredentials(uri)}: ${(error as Error).message}`,
        },
      ]);
    }
    const db = client.db(store.mongoDb);
    return criteria
      ? await profilesByCriteria(db, criteria, { sampleSize, seed }, '--profiles')
      : await profilesById(db, spec.split(','), '--profiles');
  } finally {
    await client.close();
  }
}

/** The URI without its user-info (`user:password@`), for messages: a password never reaches a log. */
export function withoutCredentials(uri: string): string {
  return uri.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}
