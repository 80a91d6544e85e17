/**
 * Which hosts the traffic generator may send to, so that an API caller cannot aim it at an
 * internal service (SSRF). Entries are host names (`shop.internal`, `*.staging.example`), IP
 * addresses or CIDR ranges (`10.1.0.0/16`, `fd00::/8`). A target passes when its host name is
 * listed, or when every address it resolves to lies in a listed range; the same check runs again
 * on every connection (see `guardedLookup`), so a DNS answer that changes after validation
 * (rebinding) is refused at connect time, and so are redirects to hosts outside the list.
 */
import dns from 'node:dns';
import net from 'node:net';
import { ValidationError } from '../core/validation';

/** Loopback only: a fresh install can load-test what runs on the same machine and nothing else. */
export const DEFAULT_ALLOWLIST: readonly string[] = ['127.0.0.0/8', '::1/128', 'localhost'];

interface Range {
  family: 4 | 6;
  base: bigint;
  bits: number;
}

export class TargetNotAllowedError extends Error {
  readonly code = 'ERR_LOADGEN_TARGET_NOT_ALLOWED';
}

function ipToBigInt(address: string): { family: 4 | 6; value: bigint } | undefined {
  const family = net.isIP(address);
  if (family === 4) {
    const value = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  if (family === 6) {
    // An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is judged as the IPv4 address it carries.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return ipToBigInt(mapped[1] as string);
    const [head = '', tail = ''] = address.split('::');
    const parse = (text: string) => (text ? text.split(':') : []);
    let headParts = parse(head);
    let tailParts = address.includes('::') ? parse(tail) : [];
    const last = (address.includes('::') ? tailParts : headParts).at(-1);
    if (last && last.includes('.')) {
      const v4 = ipToBigInt(last);
      const words = v4 ? [(v4.value >> 16n).toString(16), (v4.value & 0xffffn).toString(16)] : [];
      if (address.includes('::')) tailParts = [...tailParts.slice(0, -1), ...words];
      else headParts = [...headParts.slice(0, -1), ...words];
    }
    const missing = 8 - headParts.length - tailParts.length;
    const words = [...headParts, ...Array<string>(Math.max(missing, 0)).fill('0'), ...tailParts];
    const value = words.reduce((acc, word) => (acc << 16n) | BigInt(parseInt(word || '0', 16)), 0n);
    return { family: 6, value };
  }
  return undefined;
}

function parseRange(entry: string): Range | undefined {
  const [address = '', prefix] = entry.split('/');
  const ip = ipToBigInt(address);
  if (!ip) return undefined;
  const width = ip.family === 4 ? 32 : 128;
  const bits = prefix === undefined ? width : Number(prefix);
  if (!Number.isInteger(bits) || bits < 0 || bits > width || (prefix !== undefined && !/^\d+$/.test(prefix)))
    return undefined;
  const shift = BigInt(width - bits);
  return { family: ip.family, base: (ip.value >> shift) << shift, bits };
}

const HOST_ENTRY = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})?(\.[a-z0-9]([a-z0-9-]{0,62})?)*$/;

export class TargetAllowlist {
  private readonly ranges: Range[] = [];
  private readonly hosts = new Set<string>();
  private readonly suffixes: string[] = [];

  /** Throws a ValidationError naming `field` for an entry that is neither a host name nor a range. */
  constructor(
    readonly entries: readonly string[] = DEFAULT_ALLOWLIST,
    field = 'allowlist',
  ) {
    const bad: string[] = [];
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      const range = parseRange(entry.replace(/^\[|\]$/g, ''));
      if (range) this.ranges.push(range);
      else if (HOST_ENTRY.test(entry)) {
        if (entry.startsWith('*.')) this.suffixes.push(entry.slice(1));
        else this.hosts.add(entry);
      } else bad.push(raw);
    }
    if (bad.length > 0)
      throw new ValidationError([
        { field, rule: `has entries that are neither host names nor IP/CIDR ranges: ${bad.join(', ')}` },
      ]);
  }

  /** Host names may also be comma-separated in one string (environment variables). */
  static parse(text: string | undefined, field = 'allowlist'): TargetAllowlist {
    if (text === undefined || text.trim() === '') return new TargetAllowlist(DEFAULT_ALLOWLIST, field);
    return new TargetAllowlist(text.split(','), field);
  }

  allowsHostName(hostname: string): boolean {
    const host = hostname.toLowerCase().replace(/\.$/, '');
    return this.hosts.has(host) || this.suffixes.some((suffix) => host.endsWith(suffix));
  }

  allowsAddress(address: string): boolean {
    const ip = ipToBigInt(address);
    if (!ip) return false;
    return this.ranges.some((range) => {
      if (range.family !== ip.family) return false;
      const shift = BigInt((ip.family === 4 ? 32 : 128) - range.bits);
      return ip.value >> shift === range.base >> shift;
    });
  }

  /**
   * Resolves and checks a target URL's host. Throws TargetNotAllowedError with a message meant
   * for the caller (it names the host, never what it resolved to: that would leak internal DNS).
   */
  async check(url: URL): Promise<void> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (this.allowsHostName(host)) return;
    if (net.isIP(host)) {
      if (this.allowsAddress(host)) return;
      throw new TargetNotAllowedError(`host ${host} is not in the target allowlist`);
    }
    let addresses: dns.LookupAddress[];
    try {
      addresses = await dns.promises.lookup(host, { all: true });
    } catch {
      throw new TargetNotAllowedError(`host ${host} does not resolve and is not in the target allowlist`);
    }
    if (addresses.length === 0 || !addresses.every((entry) => this.allowsAddress(entry.address)))
      throw new TargetNotAllowedError(`host ${host} is not in the target allowlist`);
  }

  /**
   * A `lookup` for net/tls connect options: host names listed by name resolve as usual, others
   * only to addresses inside the listed ranges.
   */
  guardedLookup(): net.LookupFunction {
    return (hostname, options, callback) => {
      dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, '', 0);
        const byName = this.allowsHostName(hostname);
        const allowed = addresses.filter((entry) => byName || this.allowsAddress(entry.address));
        if (allowed.length === 0) {
          return callback(
            new TargetNotAllowedError(`host ${hostname} resolves outside the target allowlist`),
            '',
            0,
          );
        }
        if (options.all)
          return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, allowed);
        const first = allowed[0] as dns.LookupAddress;
        callback(null, first.address, first.family);
      });
    };
  }
}
