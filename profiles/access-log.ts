/**
 * Web server access log lines as records: NGINX/Apache "combined" format and JSON lines (the
 * field names NGINX `log_format ... escape=json` setups commonly use). Pure: a line in, a record
 * or the reason it was skipped out.
 */
import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';

export type LogFormat = 'combined' | 'json' | 'auto';
export const LOG_FORMATS: readonly LogFormat[] = ['combined', 'json', 'auto'];

export interface AccessRecord {
  /** ms since the epoch. */
  time: number;
  /** Who made the request, before hashing: a client id, or address + user agent. */
  client: string;
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
  bytes: number;
  userAgent: string;
  country?: string;
  region?: string;
  /** Server time spent, when the log has it. */
  durationMs?: number;
}

export type ParsedLine = { record: AccessRecord } | { skip: SkipReason };
export type SkipReason = 'blank' | 'malformed' | 'bad_time' | 'bad_request_line';

// 127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://ref/" "Mozilla/4.08"
const COMBINED =
  /^(\S+) \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?/;
const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};
const CLF_TIME = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;

export function parseLine(line: string, format: LogFormat): ParsedLine {
  const trimmed = line.trim();
  if (trimmed === '') return { skip: 'blank' };
  const json = format === 'json' || (format === 'auto' && trimmed.startsWith('{'));
  return json ? parseJsonLine(trimmed) : parseCombinedLine(trimmed);
}

export function parseCombinedLine(line: string): ParsedLine {
  const match = COMBINED.exec(line);
  if (!match) return { skip: 'malformed' };
  const [, address, timeText, request, status, bytes, , userAgent] = match as unknown as string[];
  const time = parseClfTime(timeText as string);
  if (time === undefined) return { skip: 'bad_time' };
  const parts = unescape(request as string).split(' ');
  if (parts.length < 2 || !/^[A-Z]{3,10}$/.test(parts[0] as string)) return { skip: 'bad_request_line' };
  const target = splitTarget(parts[1] as string);
  if (!target) return { skip: 'bad_request_line' };
  const agent = unescape(userAgent ?? '-');
  return {
    record: {
      time,
      client: `${address}|${agent}`,
      method: parts[0] as string,
      ...target,
      status: Number(status),
      bytes: bytes === '-' ? 0 : Number(bytes),
      userAgent: agent,
    },
  };
}

function unescape(text: string): string {
  return text
    .replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    .replace(/\\(.)/g, '$1');
}

export function parseClfTime(text: string): number | undefined {
  const match = CLF_TIME.exec(text);
  if (!match) return undefined;
  const [, day, month, year, hour, minute, second, sign, offsetHours, offsetMinutes] =
    match as unknown as string[];
  const monthIndex = MONTHS[month as string];
  if (monthIndex === undefined) return undefined;
  const utc = Date.UTC(Number(year), monthIndex, Number(day), Number(hour), Number(minute), Number(second));
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000 * (sign === '-' ? -1 : 1);
  return Number.isFinite(utc) ? utc - offset : undefined;
}

function splitTarget(target: string): { path: string; query: URLSearchParams } | undefined {
  let url: URL;
  try {
    url = new URL(target, 'http://log.invalid');
  } catch {
    return undefined;
  }
  if (!target.startsWith('/') && !/^https?:\/\//.test(target)) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    path = url.pathname;
  }
  return { path, query: url.searchParams };
}

const pick = (object: Record<string, unknown>, names: readonly string[]): unknown => {
  for (const name of names)
    if (object[name] !== undefined && object[name] !== null && object[name] !== '') return object[name];
  return undefined;
};

/** JSON lines with NGINX-style names (`remote_addr`, `request`, `status`, ...) or simpler ones. */
export function parseJsonLine(line: string): ParsedLine {
  let object: unknown;
  try {
    object = JSON.parse(line);
  } catch {
    return { skip: 'malformed' };
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return { skip: 'malformed' };
  const fields = object as Record<string, unknown>;
  const time = parseJsonTime(
    pick(fields, ['time', 'timestamp', '@timestamp', 'time_iso8601', 'time_local', 'ts']),
  );
  if (time === undefined) return { skip: 'bad_time' };
  let method = pick(fields, ['method', 'request_method', 'verb']);
  let target = pick(fields, ['path', 'uri', 'request_uri', 'url']);
  const request = pick(fields, ['request']);
  if ((method === undefined || target === undefined) && typeof request === 'string') {
    const parts = request.split(' ');
    method ??= parts[0];
    target ??= parts[1];
  }
  if (typeof method !== 'string' || !/^[A-Z]{3,10}$/.test(method) || typeof target !== 'string')
    return { skip: 'bad_request_line' };
  const split = splitTarget(target);
  if (!split) return { skip: 'bad_request_line' };
  const agent = pick(fields, ['user_agent', 'http_user_agent', 'agent', 'ua']);
  const userAgent = typeof agent === 'string' ? agent : '-';
  const clientId = pick(fields, ['client_id', 'user_id', 'session_id']);
  const address = pick(fields, ['remote_addr', 'client_ip', 'ip', 'x_forwarded_for', 'http_x_forwarded_for']);
  if (clientId === undefined && address === undefined) return { skip: 'malformed' };
  const status = Number(pick(fields, ['status', 'status_code']) ?? 0);
  const bytes = Number(pick(fields, ['body_bytes_sent', 'bytes_sent', 'bytes', 'size']) ?? 0);
  const requestTime = Number(pick(fields, ['request_time', 'duration', 'response_time']));
  const country = pick(fields, ['country', 'geo_country', 'geoip_country_code', 'country_code']);
  const region = pick(fields, ['region', 'geo_region', 'geoip_region']);
  return {
    record: {
      time,
      client: clientId !== undefined ? `id:${scalarText(clientId)}` : `${scalarText(address)}|${userAgent}`,
      method,
      ...split,
      status: Number.isFinite(status) ? status : 0,
      bytes: Number.isFinite(bytes) ? bytes : 0,
      userAgent,
      ...(typeof country === 'string' && /^[A-Za-z]{2}$/.test(country)
        ? { country: country.toUpperCase() }
        : {}),
      ...(typeof region === 'string' && /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(region) ? { region } : {}),
      // NGINX's request_time is in seconds.
      ...(Number.isFinite(requestTime) ? { durationMs: requestTime * 1000 } : {}),
    },
  };
}

function scalarText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function parseJsonTime(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1e12 ? value * 1000 : value;
  if (typeof value !== 'string') return undefined;
  const clf = parseClfTime(value);
  if (clf !== undefined) return clf;
  if (/^\d+(\.\d+)?$/.test(value)) return parseJsonTime(Number(value));
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

export type AgentClass =
  | { kind: 'bot' }
  | { kind: 'unknown' }
  | { kind: 'browser'; device: 'mobile' | 'tablet' | 'tv' | 'wearable' | 'desktop' | 'other' };

const DEVICE_CLASSES: Record<string, 'mobile' | 'tablet' | 'tv' | 'wearable' | 'other'> = {
  mobile: 'mobile',
  tablet: 'tablet',
  smarttv: 'tv',
  wearable: 'wearable',
  console: 'other',
  embedded: 'other',
  xr: 'other',
};

/**
 * Who sent a request, from its user agent: a bot or automated agent (isbot's maintained list:
 * crawlers, feed fetchers, HTTP libraries, headless browsers), an agent nobody recognises (no
 * browser and no operating system that ua-parser-js knows, or no agent at all), or a browser
 * with its device class. ua-parser-js reports no device type for desktops.
 */
export function classifyAgent(userAgent: string): AgentClass {
  const agent = userAgent.trim();
  if (agent === '' || agent === '-') return { kind: 'unknown' };
  if (isbot(agent)) return { kind: 'bot' };
  const parsed = new UAParser(agent).getResult();
  if (!parsed.browser.name && !parsed.os.name) return { kind: 'unknown' };
  const type = parsed.device.type;
  return { kind: 'browser', device: type === undefined ? 'desktop' : (DEVICE_CLASSES[type] ?? 'other') };
}
