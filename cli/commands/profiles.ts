/**
 * `canary profiles generate|import|query|ontology`: populate and inspect the profile store.
 * Output is JSON on stdout (profiles as JSON lines, summaries as one object); bad input is a
 * ValidationError naming the flag (exit 2).
 */
import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { MongoClient } from 'mongodb';
import { LOG_FORMATS } from '../../profiles/access-log';
import { combineCriteria, parseCriteriaText, parseFlatCriteria } from '../../profiles/criteria';
import { DEFAULT_POPULATION, generateProfiles } from '../../profiles/generator';
import { LogImporter, loadImportConfig } from '../../profiles/log-import';
import { defaultOntology, loadOntology, type Ontology } from '../../profiles/ontology';
import { DEFAULT_PROFILE_LIMITS, PROFILE_FIELDS } from '../../profiles/profile-schema';
import { StoreProfileSource } from '../../profiles/profile-source';
import { profileIndexes, ProfileStore } from '../../profiles/store';
import { FieldReader, ValidationError } from '../../core/validation';
import { MONGO_VARIABLES, ONTOLOGY_VARIABLE, readConfig, text, variable } from '../../platform/config';
import { ensureIndexes } from '../../platform/mongo-indexes';
import { messageOf } from '../../core/errors';

interface StoreFlags {
  mongoUri?: string;
  db?: string;
}

const ENVIRONMENT = {
  ...MONGO_VARIABLES,
  ontologyFile: ONTOLOGY_VARIABLE,
  importSalt: variable('CANARY_IMPORT_SALT', text),
};

/** The command's settings, read once: a flag wins over its variable, and a bad value names either. */
function settingsOf(flags: StoreFlags & { ontology?: string; salt?: string }) {
  return readConfig(process.env, ENVIRONMENT, {
    flags: {
      mongoUri: ['--mongo-uri', flags.mongoUri],
      mongoDb: ['--db', flags.db],
      ontologyFile: ['--ontology', flags.ontology],
      importSalt: ['--salt', flags.salt],
    },
  });
}

function storeOptions(command: Command): Command {
  return command
    .option('--mongo-uri <uri>', 'MongoDB URI (env CANARY_MONGO_URI, default mongodb://127.0.0.1:27017/)')
    .option('--db <name>', 'database (env CANARY_MONGO_DB, default canary)');
}

/** Writing commands create the store's indexes first, as every process that writes does. */
async function withStore<T>(
  settings: { mongoUri: string; mongoDb: string },
  access: 'read' | 'write',
  run: (store: ProfileStore) => Promise<T>,
): Promise<T> {
  const client = await MongoClient.connect(settings.mongoUri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const db = client.db(settings.mongoDb);
    if (access === 'write') await ensureIndexes(db, profileIndexes());
    const store = new ProfileStore(db);
    return await run(store);
  } finally {
    await client.close();
  }
}

function integer(
  r: FieldReader,
  text: string | undefined,
  flag: string,
  bounds: { min: number; max: number },
  fallback: number,
): number {
  if (text === undefined) return fallback;
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  return r.number(value, flag, { ...bounds, integer: true }) ?? fallback;
}

function ontologyOf(file: string | undefined): Ontology {
  return file ? loadOntology(file) : defaultOntology();
}

/** Opens `file` for writing, or fails naming --out (a missing directory, no permission). */
async function openOut(file: string): Promise<NodeJS.WritableStream> {
  const stream = createWriteStream(file);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (error) {
    throw new ValidationError([
      {
        field: '--out',
        rule: `cannot write ${file}: ${messageOf(error)}`,
      },
    ]);
  }
  return stream;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function register(program: Command): void {
  const profiles = program
    .command('profiles')
    .description('Behaviour profiles: generate, import from access logs, query');

  storeOptions(
    profiles
      .command('generate')
      .description(
        'Generate a seeded synthetic population (same seed: same profiles) into the store or a file',
      )
      .option('--count <n>', `profiles to generate (default ${DEFAULT_POPULATION})`)
      .option('--seed <n>', 'seed (default 1)')
      .option('--id-prefix <prefix>', 'user_id prefix (default syn)')
      .option('--out <file>', 'write JSON lines to this file (- for stdout) instead of the store'),
  ).action(async (flags: StoreFlags & { count?: string; seed?: string; idPrefix?: string; out?: string }) => {
    const r = new FieldReader();
    const count = integer(r, flags.count, '--count', { min: 1, max: 10_000_000 }, DEFAULT_POPULATION);
    const seed = integer(r, flags.seed, '--seed', { min: 0, max: 2 ** 31 - 1 }, 1);
    const idPrefix = r.string(
      flags.idPrefix ?? 'syn',
      '--id-prefix',
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/,
      'must be 1-32 of A-Z a-z 0-9 . _ -',
    );
    r.throwIfAny();
    const options = { seed, count, idPrefix: idPrefix! };
    const started = Date.now();
    if (flags.out !== undefined) {
      const out: NodeJS.WritableStream = flags.out === '-' ? process.stdout : await openOut(flags.out);
      // A write failure (disk full, stdout closed) ends the loop with a message, not a stack trace.
      let failure: Error | undefined;
      const onError = (error: Error) => (failure ??= error);
      out.on('error', onError);
      for (const profile of generateProfiles(options)) {
        if (!out.write(`${JSON.stringify(profile)}\n`))
          await new Promise<void>((resolve) => {
            const done = () => {
              out.off('drain', done);
              out.off('error', done);
              resolve();
            };
            out.once('drain', done);
            out.once('error', done);
          });
        if (failure) break;
      }
      if (out !== process.stdout && !failure) await new Promise<void>((resolve) => out.end(() => resolve()));
      if (failure)
        throw new ValidationError([
          {
            field: '--out',
            rule: `cannot write ${flags.out === '-' ? 'stdout' : flags.out}: ${failure.message}`,
          },
        ]);
      out.off('error', onError);
      if (flags.out !== '-')
        print({ generated: count, seed, file: flags.out, took_ms: Date.now() - started });
      return;
    }
    const counts = await withStore(settingsOf(flags), 'write', (store) =>
      store.load(generateProfiles(options)),
    );
    print({ generated: count, seed, ...counts, took_ms: Date.now() - started });
  });

  storeOptions(
    profiles
      .command('import')
      .description('Build profiles from web server access logs (combined format or JSON lines)')
      .argument('<files...>', 'access log files')
      .option(
        '--salt <secret>',
        'secret for hashing client ids; required. Prefer env CANARY_IMPORT_SALT: a flag shows in ps and shell history',
      )
      .option('--format <format>', `log format: ${LOG_FORMATS.join(', ')} (default auto)`)
      .option(
        '--rules <file>',
        'import configuration (YAML or JSON): path -> action rules, scrub rules, agents to exclude; default: the sample shop rules, every scrub rule, bots and unknown agents excluded',
      )
      .option(
        '--ontology <file>',
        'action ontology (env CANARY_ONTOLOGY, default: profiles/ontology/default.yaml)',
      )
      .option('--session-gap <duration>', 'inactivity that ends a session (default 30m)')
      .option('--min-patterns <n>', 'drop sessions with fewer mapped requests (default 1)')
      .option('--country <code>', 'country for logs without one (default ZZ, unknown)')
      .option('--dry-run', 'report only; write nothing'),
  ).action(
    async (
      files: string[],
      flags: StoreFlags & {
        salt?: string;
        format?: string;
        rules?: string;
        ontology?: string;
        sessionGap?: string;
        minPatterns?: string;
        country?: string;
        dryRun?: boolean;
      },
    ) => {
      const settings = settingsOf(flags);
      const r = new FieldReader();
      const salt = settings.importSalt;
      if (!salt)
        r.fail(
          '--salt',
          'is required (or CANARY_IMPORT_SALT): client ids are hashed with it so profiles cannot be traced back to addresses',
        );
      const format = r.oneOf(flags.format, '--format', LOG_FORMATS, 'auto');
      const gap = r.duration(
        flags.sessionGap,
        '--session-gap',
        { minMs: 1000, maxMs: 24 * 3_600_000 },
        30 * 60_000,
      );
      const minPatterns = integer(
        r,
        flags.minPatterns,
        '--min-patterns',
        { min: 1, max: DEFAULT_PROFILE_LIMITS.maxPatternsPerProfile },
        1,
      );
      const country = r.string(
        flags.country ?? 'ZZ',
        '--country',
        /^[A-Z]{2}$/,
        'must be an ISO 3166-1 alpha-2 code such as US',
      );
      r.throwIfAny();
      const config = flags.rules ? loadImportConfig(flags.rules) : undefined;
      const importer = new LogImporter({
        ontology: ontologyOf(settings.ontologyFile),
        format: format!,
        salt: salt!,
        ...(config?.rules ? { rules: config.rules } : {}),
        ...(config ? { scrub: config.scrub, agents: config.agents } : {}),
        sessionGapMs: gap!,
        minPatterns,
        defaultCountry: country!,
      });
      for (const file of files) {
        try {
          await importer.addFile(file);
        } catch (error) {
          throw new ValidationError([
            { field: 'files', rule: `cannot read ${file}: ${(error as Error).message}` },
          ]);
        }
      }
      const started = Date.now();
      if (flags.dryRun) {
        for (const _profile of importer.profiles());
        print({ ...importer.report, written: 0, dry_run: true });
        return;
      }
      const counts = await withStore(settings, 'write', (store) => store.load(importer.profiles()));
      print({
        ...importer.report,
        written: counts.created + counts.updated,
        ...counts,
        took_ms: Date.now() - started,
      });
    },
  );

  storeOptions(
    profiles
      .command('query')
      .description('Profiles matching criteria (JSON lines), a stratified sample, or counts')
      .option('--criteria <json>', 'criteria as JSON, e.g. \'{"device_type":"mobile"}\'')
      .option(
        '--where <key=value...>',
        'flat criteria, e.g. --where geo_location=US behavioral_pattern=high_activity',
      )
      .option('--limit <n>', 'profiles to print (default 20)')
      .option('--fields <list>', 'comma-separated fields to print')
      .option('--sample <n>', 'print a reproducible stratified sample of n profiles instead')
      .option('--seed <n>', 'seed of the sample (default 1)')
      .option('--stats', 'print counts by device, country, region, activity level and action'),
  ).action(
    async (
      flags: StoreFlags & {
        criteria?: string;
        where?: string[];
        limit?: string;
        fields?: string;
        sample?: string;
        seed?: string;
        stats?: boolean;
      },
    ) => {
      const r = new FieldReader();
      const limit = integer(r, flags.limit, '--limit', { min: 1, max: 100_000 }, 20);
      const sampleSize =
        flags.sample === undefined
          ? undefined
          : integer(r, flags.sample, '--sample', { min: 1, max: 10_000 }, 50);
      const seed = integer(r, flags.seed, '--seed', { min: 0, max: 2 ** 31 - 1 }, 1);
      const flat: Record<string, string[]> = {};
      for (const pair of flags.where ?? []) {
        const match = /^([^=]+)=(.*)$/s.exec(pair);
        if (!match) r.fail('--where', `${pair} must be key=value`);
        else (flat[match[1] as string] ??= []).push(match[2] as string);
      }
      const fields = flags.fields?.split(',').map((field) => field.trim());
      for (const field of fields ?? [])
        if (!(PROFILE_FIELDS as string[]).includes(field))
          r.fail('--fields', `${field} is not a profile field (fields: ${PROFILE_FIELDS.join(', ')})`);
      r.throwIfAny();
      const criteria = combineCriteria([
        ...(flags.criteria !== undefined ? [parseCriteriaText(flags.criteria, '--criteria')] : []),
        parseFlatCriteria(flat),
      ]);
      await withStore(settingsOf(flags), 'read', async (store) => {
        if (flags.stats) return print(await store.stats(criteria.filter));
        if (sampleSize !== undefined) {
          const sample = await new StoreProfileSource(store).sample(criteria, sampleSize, seed);
          for (const profile of await store.getMany(sample.userIds, fields)) print(profile);
          process.stderr.write(
            `${JSON.stringify({ population: sample.population, sampled: sample.userIds.length, seed, mix: sample.mix })}\n`,
          );
          return;
        }
        let after: string | undefined;
        let printed = 0;
        while (printed < limit) {
          const page = await store.find(criteria.filter, {
            limit: Math.min(1000, limit - printed),
            ...(after ? { after } : {}),
            ...(fields ? { fields } : {}),
          });
          for (const profile of page.profiles) print(profile);
          printed += page.profiles.length;
          if (page.nextAfter === null) break;
          after = page.nextAfter;
        }
      });
    },
  );

  profiles
    .command('ontology')
    .description('Check an action ontology file and list its actions')
    .argument('<file>', 'ontology file (YAML or JSON)')
    .action((file: string) => {
      const ontology = loadOntology(file);
      print({
        name: ontology.name,
        version: ontology.version,
        actions: Object.fromEntries(
          Object.entries(ontology.actions).map(([name, spec]) => [
            name,
            `${spec.request.method} ${spec.request.path}`,
          ]),
        ),
      });
    });
}
