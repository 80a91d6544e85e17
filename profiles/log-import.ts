/**
 * Profiles from real traffic: access log records are mapped to ontology actions by rules,
 * grouped per client (identified only by a salted HMAC of its address and user agent, or of
 * its client id), cut into sessions at an inactivity gap, and turned into validated profiles.
 * Every line is accounted for in the report: parsed, or skipped with its reason.
 */
import { createHmac } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse as parseYaml } from 'yaml';
import { classifyAgent, parseLine, type AccessRecord, type AgentClass, type LogFormat } from './access-log';
import { actionSpec, type Ontology, type Scalar } from './ontology';
import {
  parseProfile,
  DEFAULT_PROFILE_LIMITS,
  type Pattern,
  type DeviceType,
  type Profile,
  type ProfileLimits,
} from './profile-schema';
import { parseScrubConfig, Scrubber, type ScrubConfig, type ScrubCounts } from './scrubber';
import { FieldReader, join, ValidationError } from '../core/validation';

export interface ImportRule {
  /** HTTP method, or `*` for any. */
  method: string;
  /** `/products/:product_id` style (`:name` captures a segment, `*name` the rest), or `re:` + a regex with named groups. */
  path: string;
  /** The ontology action, or null to ignore such requests on purpose (static assets, health checks). */
  action: string | null;
  /** Data templates: `{name}` a path capture, `{query.q}` a query parameter, `{previous.product_id}` the session's last value. */
  data: Record<string, string>;
}

interface CompiledRule extends ImportRule {
  regex: RegExp;
}

export const DEFAULT_RULES: ImportRule[] = [
  { method: '*', path: 're:\\.(css|js|map|png|jpe?g|gif|svg|ico|webp|woff2?|ttf)$', action: null, data: {} },
  { method: '*', path: '/static/*rest', action: null, data: {} },
  { method: '*', path: '/healthz', action: null, data: {} },
  { method: 'GET', path: '/', action: 'page_view', data: {} },
  { method: 'GET', path: '/search', action: 'search', data: { query: '{query.q}' } },
  {
    method: 'GET',
    path: '/products/:product_id',
    action: 'view_product',
    data: { product_id: '{product_id}' },
  },
  {
    method: 'POST',
    path: '/cart/items',
    action: 'add_to_cart',
    data: { product_id: '{previous.product_id}' },
  },
  { method: 'POST', path: '/checkout', action: 'checkout', data: {} },
  { method: 'POST', path: '/login', action: 'login', data: {} },
  { method: 'GET', path: '/api/*endpoint', action: 'api_call', data: { endpoint: '{endpoint}' } },
  { method: 'POST', path: '/upload', action: 'upload', data: {} },
];

export interface ImportOptions {
  ontology: Ontology;
  format: LogFormat;
  /** Secret mixed into client hashes, so ids cannot be traced back to addresses by brute force. */
  salt: string;
  rules?: ImportRule[];
  /** Inactivity that ends a session. */
  sessionGapMs?: number;
  limits?: ProfileLimits;
  /** Sessions with fewer mapped requests are dropped (a lone request says little about behaviour). */
  minPatterns?: number;
  /** Used when the log has no country (combined format): ZZ is ISO 3166's "unknown". */
  defaultCountry?: string;
  /** What replaces personal data in values copied from the log; default: every rule on. */
  scrub?: ScrubConfig;
  /** Which agents' lines are left out; default: bots and unknown agents. */
  agents?: AgentPolicy;
}

export interface AgentPolicy {
  excludeBots: boolean;
  /** Agents with neither a browser nor an operating system ua-parser-js recognises, or none. */
  excludeUnknown: boolean;
}

export const DEFAULT_AGENT_POLICY: AgentPolicy = { excludeBots: true, excludeUnknown: true };

/** Everything an import configuration file holds; rules are absent when the file names none. */
export interface ImportConfig {
  rules?: ImportRule[];
  scrub: ScrubConfig;
  agents: AgentPolicy;
}

export interface ImportReport {
  lines: number;
  parsed: number;
  mapped: number;
  skipped: Record<string, number>;
  /** The first few line numbers per skip reason, to find them in the file. */
  examples: Record<string, number[]>;
  clients: number;
  sessions: number;
  profiles: number;
  droppedSessions: Record<string, number>;
  /** Parsed lines left out for their agent (also in `skipped` as bot_agent / unknown_agent). */
  excludedAgents: { bot: number; unknown: number };
  /** Values replaced by a placeholder, per scrub rule. */
  scrubbed: ScrubCounts;
}

const DEFAULT_GAP_MS = 30 * 60_000;
const EXAMPLES_PER_REASON = 5;
const AGENT_CACHE_SIZE = 10_000;

function deviceTypeOf(agent: AgentClass): DeviceType {
  if (agent.kind === 'browser') return agent.device;
  return agent.kind === 'bot' ? 'bot' : 'other';
}

export function parseRules(input: unknown, field = 'rules'): ImportRule[] {
  const r = new FieldReader();
  if (!Array.isArray(input)) r.fail(field, 'must be a list of rules');
  const list: unknown[] = Array.isArray(input) ? input : [];
  const rules: ImportRule[] = [];
  list.forEach((item, index) => {
    const ruleField = join(field, index);
    const rule = r.object(item, ruleField);
    if (!rule) return;
    r.onlyKeys(rule, ['method', 'path', 'action', 'data'], ruleField);
    const method =
      rule.method === undefined
        ? '*'
        : r.string(
            rule.method,
            join(ruleField, 'method'),
            /^(\*|[A-Z]{3,10})$/,
            'must be * or an HTTP method',
          );
    const path = r.string(rule.path, join(ruleField, 'path'));
    if (path !== undefined) {
      try {
        compilePath(path);
      } catch (error) {
        r.fail(join(ruleField, 'path'), (error as Error).message);
      }
    }
    const action =
      rule.action === null
        ? null
        : r.string(
            rule.action,
            join(ruleField, 'action'),
            /^[a-z][a-z0-9_]{0,63}$/,
            'must be an action name or null (ignore)',
          );
    const data: Record<string, string> = {};
    const dataIn = rule.data === undefined ? {} : r.object(rule.data, join(ruleField, 'data'));
    for (const [key, template] of Object.entries(dataIn ?? {})) {
      if (typeof template !== 'string')
        r.fail(join(join(ruleField, 'data'), key), 'must be a template string');
      else data[key] = template;
    }
    if (method !== undefined && path !== undefined && action !== undefined)
      rules.push({ method, path, action, data });
  });
  r.throwIfAny();
  return rules;
}

/**
 * An import configuration: a list of rules, or a mapping with `rules`, `scrub` (see
 * `parseScrubConfig`) and `agents` (`excludeBots`, `excludeUnknown`).
 */
export function parseImportConfig(document: unknown): ImportConfig {
  if (Array.isArray(document))
    return { rules: parseRules(document), scrub: parseScrubConfig(undefined), agents: DEFAULT_AGENT_POLICY };
  const r = new FieldReader();
  const config = r.object(document, 'config');
  if (!config) r.throwIfAny();
  const sections = config ?? {};
  r.onlyKeys(sections, ['rules', 'scrub', 'agents'], '');
  const collect = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      r.issues.push(...error.issues);
      return undefined;
    }
  };
  const rules = sections.rules === undefined ? undefined : collect(() => parseRules(sections.rules));
  const scrub = collect(() => parseScrubConfig(sections.scrub));
  const agents = { ...DEFAULT_AGENT_POLICY };
  const agentsIn = sections.agents === undefined ? {} : r.object(sections.agents, 'agents');
  if (agentsIn) {
    r.onlyKeys(agentsIn, ['excludeBots', 'excludeUnknown'], 'agents');
    for (const key of ['excludeBots', 'excludeUnknown'] as const) {
      const value = agentsIn[key];
      if (value === undefined) continue;
      if (typeof value !== 'boolean') r.fail(join('agents', key), 'must be true or false');
      else agents[key] = value;
    }
  }
  r.throwIfAny();
  return { ...(rules ? { rules } : {}), scrub: scrub!, agents };
}

export function loadImportConfig(file: string): ImportConfig {
  const text = readFileSync(file, 'utf8');
  let document: unknown;
  try {
    document = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ValidationError([
      { field: 'rules', rule: `${file} is not valid: ${(error as Error).message}` },
    ]);
  }
  return parseImportConfig(document);
}

function compilePath(path: string): RegExp {
  if (path.startsWith('re:')) {
    try {
      return new RegExp(path.slice(3));
    } catch {
      throw new Error('must be a valid regular expression after re:');
    }
  }
  if (!path.startsWith('/')) throw new Error('must start with / (or re: for a regular expression)');
  const pattern = path
    .split('/')
    .map((segment) => {
      if (segment.startsWith(':')) return `(?<${checkName(segment.slice(1))}>[^/]+)`;
      if (segment.startsWith('*')) return `(?<${checkName(segment.slice(1))}>.+)`;
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${pattern}/?$`);
}

function checkName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`has an invalid capture name "${name}"`);
  return name;
}

interface MappedRequest {
  time: number;
  action: string;
  data: Record<string, Scalar>;
  bytes: number;
  durationMs?: number;
}

type MapResult = { mapped: MappedRequest } | { skip: string };

function mapRecord(
  record: AccessRecord,
  rules: CompiledRule[],
  ontology: Ontology,
  previous: Map<string, Scalar>,
  scrub: (text: string) => string,
): MapResult {
  for (const rule of rules) {
    if (rule.method !== '*' && rule.method !== record.method) continue;
    const match = rule.regex.exec(record.path);
    if (!match) continue;
    if (rule.action === null) return { skip: 'ignored_by_rule' };
    const spec = actionSpec(ontology, rule.action);
    if (!spec) return { skip: `unknown_action:${rule.action}` };
    const data: Record<string, Scalar> = {};
    for (const [key, template] of Object.entries(rule.data)) {
      const value = resolve(template, match.groups ?? {}, record.query, previous);
      if (value === undefined) continue;
      data[key] = coerce(scrub(value), Object.hasOwn(spec.params, key) ? spec.params[key]?.type : undefined);
    }
    return {
      mapped: {
        time: record.time,
        action: rule.action,
        data,
        bytes: record.bytes,
        ...(record.durationMs !== undefined ? { durationMs: record.durationMs } : {}),
      },
    };
  }
  return { skip: 'no_matching_rule' };
}

function resolve(
  template: string,
  groups: Record<string, string | undefined>,
  query: URLSearchParams,
  previous: Map<string, Scalar>,
): string | undefined {
  let missing = false;
  const text = template.replace(/\{([A-Za-z_.]+)\}/g, (_m, name: string) => {
    let value: string | undefined;
    if (name.startsWith('query.')) value = query.get(name.slice(6)) ?? undefined;
    else if (name.startsWith('previous.')) {
      const last = previous.get(name.slice(9));
      value = last === undefined || last === null ? undefined : String(last);
    } else value = groups[name];
    if (value === undefined || value === '') missing = true;
    return value ?? '';
  });
  return missing ? undefined : text;
}

function coerce(value: string, type: string | undefined): Scalar {
  if (type === 'integer' && /^-?\d+$/.test(value)) return Number(value);
  if (type === 'number' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

export function hashClient(client: string, salt: string): string {
  return createHmac('sha256', salt).update(client).digest('base64url').slice(0, 22);
}

interface ClientState {
  id: string;
  agent: AgentClass;
  country?: string;
  region?: string;
  requests: MappedRequest[];
}

/**
 * Reads records line by line (a file is streamed, never loaded whole), but keeps every mapped
 * request (time, action, data, bytes) per client until `profiles()`: records may arrive out of
 * time order, so a client's sessions are cut only once all of its requests are in and sorted.
 * Memory therefore grows with the number of mapped requests (roughly 100-200 bytes each), not
 * with the file size; split very large logs by time (at a quiet hour, longer than the session
 * gap) and import the parts one after another.
 */
export class LogImporter {
  readonly report: ImportReport = {
    lines: 0,
    parsed: 0,
    mapped: 0,
    skipped: {},
    examples: {},
    clients: 0,
    sessions: 0,
    profiles: 0,
    droppedSessions: {},
    excludedAgents: { bot: 0, unknown: 0 },
    scrubbed: {},
  };
  private readonly rules: CompiledRule[];
  private readonly scrubber: Scrubber;
  private readonly agents: AgentPolicy;
  /** Parsing a user agent costs more than the rest of a line; logs repeat a few thousand agents. */
  private readonly agentClasses = new Map<string, AgentClass>();
  private readonly clients = new Map<string, ClientState>();
  private readonly previous = new Map<string, Map<string, Scalar>>();

  constructor(private readonly options: ImportOptions) {
    if (!options.salt)
      throw new ValidationError([{ field: 'salt', rule: 'is required: client ids are hashed with it' }]);
    this.rules = (options.rules ?? DEFAULT_RULES).map((rule) => ({ ...rule, regex: compilePath(rule.path) }));
    this.scrubber = new Scrubber(options.scrub);
    this.report.scrubbed = this.scrubber.counts;
    this.agents = options.agents ?? DEFAULT_AGENT_POLICY;
  }

  private agentOf(userAgent: string): AgentClass {
    let agent = this.agentClasses.get(userAgent);
    if (!agent) {
      agent = classifyAgent(userAgent);
      if (this.agentClasses.size >= AGENT_CACHE_SIZE) this.agentClasses.clear();
      this.agentClasses.set(userAgent, agent);
    }
    return agent;
  }

  addLine(line: string): void {
    const lineNumber = ++this.report.lines;
    const parsed = parseLine(line, this.options.format);
    if ('skip' in parsed) {
      if (parsed.skip !== 'blank') this.skip(parsed.skip, lineNumber);
      else this.report.lines--;
      return;
    }
    this.report.parsed++;
    const record = parsed.record;
    const agent = this.agentOf(record.userAgent);
    if (agent.kind === 'bot' && this.agents.excludeBots) {
      this.report.excludedAgents.bot++;
      this.skip('bot_agent', lineNumber);
      return;
    }
    if (agent.kind === 'unknown' && this.agents.excludeUnknown) {
      this.report.excludedAgents.unknown++;
      this.skip('unknown_agent', lineNumber);
      return;
    }
    const id = hashClient(record.client, this.options.salt);
    // Rules with {previous.x} read the client's latest values; records are assumed mostly in time order.
    let previous = this.previous.get(id);
    if (!previous) {
      previous = new Map<string, Scalar>();
      this.previous.set(id, previous);
    }
    const result = mapRecord(record, this.rules, this.options.ontology, previous, (text) =>
      this.scrubber.scrub(text),
    );
    if ('skip' in result) {
      this.skip(result.skip, lineNumber);
      return;
    }
    for (const [key, value] of Object.entries(result.mapped.data)) previous.set(key, value);
    this.report.mapped++;
    let client = this.clients.get(id);
    if (!client) {
      client = { id, agent, requests: [] };
      this.clients.set(id, client);
    }
    if (record.country) client.country = record.country;
    // A region is free text from the log too: one that needed scrubbing is dropped, not stored.
    if (record.region && this.scrubber.scrub(record.region) === record.region) client.region = record.region;
    client.requests.push(result.mapped);
  }

  async addFile(file: string): Promise<void> {
    const lines = createInterface({
      input: createReadStream(file, { encoding: 'utf8' }),
      crlfDelay: Infinity,
    });
    for await (const line of lines) this.addLine(line);
  }

  private skip(reason: string, lineNumber: number): void {
    this.report.skipped[reason] = (this.report.skipped[reason] ?? 0) + 1;
    const examples = (this.report.examples[reason] ??= []);
    if (examples.length < EXAMPLES_PER_REASON) examples.push(lineNumber);
  }

  private drop(reason: string): void {
    this.report.droppedSessions[reason] = (this.report.droppedSessions[reason] ?? 0) + 1;
  }

  /** Sessionises every client and returns the valid profiles (invalid sessions are counted, not thrown). */
  *profiles(): Generator<Profile> {
    const gap = this.options.sessionGapMs ?? DEFAULT_GAP_MS;
    const limits = this.options.limits ?? DEFAULT_PROFILE_LIMITS;
    const minPatterns = this.options.minPatterns ?? 1;
    this.report.clients = this.clients.size;
    for (const client of [...this.clients.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const requests = client.requests.sort((a, b) => a.time - b.time);
      let session: MappedRequest[] = [];
      let index = 0;
      const emit = (): Profile | undefined => {
        if (session.length === 0) return undefined;
        this.report.sessions++;
        const current = session;
        session = [];
        if (current.length < minPatterns) {
          this.drop('too_few_requests');
          return undefined;
        }
        const truncated = current.slice(0, limits.maxPatternsPerProfile);
        if (truncated.length < current.length) this.drop('truncated_to_max_patterns');
        return this.buildProfile(client, index++, truncated, limits);
      };
      for (const request of requests) {
        const last = session[session.length - 1];
        if (last && request.time - last.time > gap) {
          const profile = emit();
          if (profile) yield profile;
        }
        session.push(request);
      }
      const profile = emit();
      if (profile) yield profile;
    }
  }

  private buildProfile(
    client: ClientState,
    index: number,
    requests: MappedRequest[],
    limits: ProfileLimits,
  ): Profile | undefined {
    const start = (requests[0] as MappedRequest).time;
    const patterns: Pattern[] = requests.map((request) => ({
      timestamp: request.time - start,
      action: request.action,
      ...(Object.keys(request.data).length > 0 ? { data: request.data } : {}),
    }));
    const durations = requests.filter((request) => request.durationMs !== undefined);
    const span = (patterns[patterns.length - 1] as Pattern).timestamp;
    const candidate = {
      user_id: `imp-${client.id}-${index}`,
      behavioral_patterns: patterns,
      resource_intensity: {
        period_ms: Math.min(86_400_000, Math.max(60_000, span)),
        network_bytes: requests.reduce((sum, request) => sum + request.bytes, 0),
        ...(durations.length > 0
          ? { cpu_ms: Math.round(durations.reduce((sum, request) => sum + (request.durationMs ?? 0), 0)) }
          : {}),
      },
      geo_location: {
        country: client.country ?? this.options.defaultCountry ?? 'ZZ',
        ...(client.region ? { region: client.region } : {}),
      },
      device_type: deviceTypeOf(client.agent),
    };
    try {
      const profile = parseProfile(candidate, this.options.ontology, limits);
      this.report.profiles++;
      return profile;
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const issue = error.issues[0];
      this.drop(`invalid:${issue ? issue.field.replace(/\[\d+\]/g, '[]') + ': ' + issue.rule : 'unknown'}`);
      return undefined;
    }
  }
}
