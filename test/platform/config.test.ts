import pino from 'pino';
import { ValidationError } from '../../core/validation';
import {
  boolean,
  integer,
  MONGO_VARIABLES,
  port,
  readConfig,
  secret,
  variable,
  withLegacy,
} from '../../platform/config';

/** A real pino logger whose lines are kept, to read the warnings it wrote. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

const DECLARATION = {
  ...MONGO_VARIABLES,
  port: variable('DASHBOARD_PORT', port, { default: 8080, legacy: ['PORT'] }),
  token: variable('DASHBOARD_API_TOKEN', secret(16), { legacy: ['API_TOKEN'] }),
  protectReads: variable('DASHBOARD_PROTECT_READS', boolean, { default: false }),
};

function issuesOf(run: () => unknown): { field: string; rule: string }[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return [...error.issues];
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('readConfig', () => {
  test('defaults apply to unset and empty variables, and values are typed', () => {
    const { logger, lines } = capturingLogger();
    const config = readConfig({ DASHBOARD_PORT: '', DASHBOARD_PROTECT_READS: 'true' }, DECLARATION, {
      logger,
    });
    expect(config).toEqual({
      mongoUri: 'mongodb://127.0.0.1:27017/',
      mongoDb: 'canary',
      port: 8080,
      token: undefined,
      protectReads: true,
    });
    expect(lines).toEqual([]);
  });

  test('a legacy name still works, with one warning that names the new variable', () => {
    const { logger, lines } = capturingLogger();
    const config = readConfig({ PORT: '9000', API_TOKEN: 'a-token-of-24-characters' }, DECLARATION, {
      logger,
    });
    expect(config).toMatchObject({ port: 9000, token: 'a-token-of-24-characters' });
    expect(
      lines.map(({ level, variable, replacement, msg }) => ({ level, variable, replacement, msg })),
    ).toEqual([
      {
        level: 40,
        variable: 'PORT',
        replacement: 'DASHBOARD_PORT',
        msg: 'PORT is deprecated and will stop working in the next release: set DASHBOARD_PORT instead',
      },
      {
        level: 40,
        variable: 'API_TOKEN',
        replacement: 'DASHBOARD_API_TOKEN',
        msg: 'API_TOKEN is deprecated and will stop working in the next release: set DASHBOARD_API_TOKEN instead',
      },
    ]);
  });

  test('the new name wins over a legacy one, which is reported as ignored', () => {
    const { logger, lines } = capturingLogger();
    expect(readConfig({ PORT: '9000', DASHBOARD_PORT: '9001' }, DECLARATION, { logger }).port).toBe(9001);
    expect(lines.map((line) => line.msg)).toEqual([
      'PORT is ignored because DASHBOARD_PORT is set: remove PORT',
    ]);
  });

  test('every bad variable is one field error naming the variable it was read from', () => {
    const { logger } = capturingLogger();
    expect(
      issuesOf(() =>
        readConfig(
          {
            CANARY_MONGO_URI: 'postgres://x',
            CANARY_MONGO_DB: 'no spaces',
            PORT: '70000',
            DASHBOARD_API_TOKEN: 'short',
            DASHBOARD_PROTECT_READS: 'yes',
          },
          DECLARATION,
          { logger },
        ),
      ),
    ).toEqual([
      { field: 'CANARY_MONGO_URI', rule: 'must be a mongodb:// or mongodb+srv:// URI' },
      { field: 'CANARY_MONGO_DB', rule: 'must be a database name (1-63 of A-Z a-z 0-9 _ -)' },
      { field: 'PORT', rule: 'must be an integer between 0 and 65535' },
      { field: 'DASHBOARD_API_TOKEN', rule: 'must be at least 16 characters' },
      { field: 'DASHBOARD_PROTECT_READS', rule: 'must be true or false' },
    ]);
  });

  test('integers refuse fractions, words and unsafe sizes', () => {
    const days = { days: variable('CANARY_RETENTION_DAYS', integer({ min: 1, max: 3650 }), { default: 30 }) };
    for (const text of ['1.5', 'ten', '0', '3651', '1e3', '99999999999999999999'])
      expect(issuesOf(() => readConfig({ CANARY_RETENTION_DAYS: text }, days))).toEqual([
        { field: 'CANARY_RETENTION_DAYS', rule: 'must be an integer between 1 and 3650' },
      ]);
    expect(readConfig({ CANARY_RETENTION_DAYS: ' 7 ' }, days).days).toBe(7);
  });

  test('withLegacy gives a shared variable the old name one process used', () => {
    const { logger, lines } = capturingLogger();
    const ontology = variable('CANARY_ONTOLOGY', (text) => text);
    const config = readConfig(
      { LOADGEN_ONTOLOGY: 'shop.yaml' },
      { file: withLegacy(ontology, 'LOADGEN_ONTOLOGY') },
      { logger },
    );
    expect(config.file).toBe('shop.yaml');
    expect(lines[0]).toMatchObject({ variable: 'LOADGEN_ONTOLOGY', replacement: 'CANARY_ONTOLOGY' });
    expect(
      readConfig({ LOADGEN_ONTOLOGY: 'shop.yaml' }, { file: ontology }, { logger }).file,
    ).toBeUndefined();
  });
});
