/**
 * Replaces personal data and secrets in free text copied from logs (search terms, path
 * captures) by typed placeholders: `<email>`, `<token>`, `<card>`, `<ip>`, `<phone>`, and
 * `<name>` for extra patterns. Pure; counts what it replaced per rule.
 *
 * Rules run in a fixed order so that a value is claimed by the most specific one: an e-mail
 * before its digits look like a phone, a token before its digits look like a card, a card
 * (Luhn-checked) and an address before a phone.
 */
import { isIP } from 'node:net';
import { FieldReader, isPlainObject, join } from '../core/validation';

export const SCRUB_RULES = ['email', 'token', 'card', 'ip', 'phone'] as const;
export type ScrubRule = (typeof SCRUB_RULES)[number];

export interface ExtraPattern {
  name: string;
  pattern: RegExp;
}

export interface ScrubConfig {
  rules: Record<ScrubRule, boolean>;
  /** Run after the built-in rules; each match becomes `<name>`. */
  extra: ExtraPattern[];
}

export const DEFAULT_SCRUB_CONFIG: ScrubConfig = {
  rules: { email: true, token: true, card: true, ip: true, phone: true },
  extra: [],
};

// The local part takes every character RFC 5322 allows unquoted.
const EMAIL = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
// Runs of base64url/hex characters; `tokenLike` decides which are random. `/` and `+` split
// runs, so a path keeps its words; a standard base64 token still leaves long random pieces.
const TOKEN_CANDIDATE = /[A-Za-z0-9_=-]{20,}/g;
const CARD_CANDIDATE = /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g;
const IPV4 =
  /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])/g;
const IPV6_CANDIDATE =
  /(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])/g;
// An international number, a grouped national one, or a bare run of 10-15 digits.
const PHONE =
  /(?<![\w+])(?:\+\d[\d ().-]{6,20}\d|\(?\d{2,5}\)?[ .-]\d{2,5}(?:[ .-]\d{2,5}){1,3}|\d{10,15})(?![\w])/g;

const MIN_TOKEN_LENGTH = 20;

/** Luhn check digit: what card numbers carry and random digit runs usually do not. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    let digit = Number(digits[digits.length - 1 - index]);
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

function shannonBitsPerChar(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * A long run that looks random: hex of 20+ characters with letters and digits (session ids,
 * digests), or a base64-ish run whose entropy is close to that of random text of its length and
 * that has a part of 10+ characters mixing letters with digits or case inside it. Slugs
 * ("Red-Running-Shoes-2024") stay: their words are letters or digits, never a mix.
 */
export function tokenLike(run: string): boolean {
  const core = run.replace(/=+$/, '');
  if (core.length < MIN_TOKEN_LENGTH) return false;
  if (/^[0-9a-fA-F]+$/.test(core)) return /\d/.test(core) && /[a-fA-F]/.test(core);
  const mixedPart = core
    .split(/[-_]/)
    .some(
      (part) =>
        part.length >= 10 &&
        /[A-Za-z]/.test(part) &&
        (/\d/.test(part) || /[a-z].*[A-Z]|[A-Z]{2}.*[a-z]/.test(part)),
    );
  return mixedPart && shannonBitsPerChar(core) >= 0.75 * Math.log2(Math.min(core.length, 64));
}

/** Counts per rule name (built-in and extra) of the values replaced so far. */
export type ScrubCounts = Record<string, number>;

export class Scrubber {
  readonly counts: ScrubCounts = {};

  constructor(private readonly config: ScrubConfig = DEFAULT_SCRUB_CONFIG) {}

  scrub(text: string): string {
    const { rules } = this.config;
    let result = text;
    if (rules.email) result = this.replace(result, EMAIL, 'email');
    if (rules.token) {
      result = this.replace(result, JWT, 'token');
      result = this.replace(result, TOKEN_CANDIDATE, 'token', tokenLike);
    }
    if (rules.card)
      result = this.replace(result, CARD_CANDIDATE, 'card', (m) => luhnValid(m.replace(/\D/g, '')));
    if (rules.ip) {
      result = this.replace(result, IPV4, 'ip');
      result = this.replace(result, IPV6_CANDIDATE, 'ip', (m) => isIP(m) === 6);
    }
    if (rules.phone) result = this.replace(result, PHONE, 'phone', phoneLike);
    for (const extra of this.config.extra) result = this.replace(result, extra.pattern, extra.name);
    return result;
  }

  private replace(text: string, pattern: RegExp, rule: string, accept?: (match: string) => boolean): string {
    return text.replace(pattern, (match) => {
      if (accept && !accept(match)) return match;
      this.counts[rule] = (this.counts[rule] ?? 0) + 1;
      return `<${rule}>`;
    });
  }
}

function phoneLike(match: string): boolean {
  const digits = match.replace(/\D/g, '').length;
  // ISO dates and times are grouped digits too, but not phone numbers.
  if (/^\d{4}-\d{2}-\d{2}$/.test(match)) return false;
  return digits >= 8 && digits <= 15;
}

/**
 * The `scrub` section of the import configuration:
 * `{ email: false, extra: [{ name: order_id, pattern: 'ORD-\\d+' }] }`. Built-in rules default to on.
 */
export function parseScrubConfig(input: unknown, field = 'scrub'): ScrubConfig {
  const r = new FieldReader();
  const section = input === undefined ? {} : r.object(input, field);
  const rules = { ...DEFAULT_SCRUB_CONFIG.rules };
  const extra: ExtraPattern[] = [];
  if (section) {
    r.onlyKeys(section, [...SCRUB_RULES, 'extra'], field);
    for (const rule of SCRUB_RULES) {
      const value = section[rule];
      if (value === undefined) continue;
      if (typeof value !== 'boolean') r.fail(join(field, rule), 'must be true or false');
      else rules[rule] = value;
    }
    const list = section.extra;
    if (list !== undefined && !Array.isArray(list)) r.fail(join(field, 'extra'), 'must be a list');
    const names = new Set<string>(SCRUB_RULES);
    (Array.isArray(list) ? (list as unknown[]) : []).forEach((item, index) => {
      const itemField = join(join(field, 'extra'), index);
      if (!isPlainObject(item)) return r.fail(itemField, 'must be an object with name and pattern');
      r.onlyKeys(item, ['name', 'pattern'], itemField);
      const name = r.string(
        item.name,
        join(itemField, 'name'),
        /^[a-z][a-z0-9_]{0,31}$/,
        'must be 1-32 of a-z 0-9 _ starting with a letter (it becomes the placeholder <name>)',
      );
      if (name !== undefined && names.has(name))
        r.fail(join(itemField, 'name'), `${name} is already a rule name`);
      if (name !== undefined) names.add(name);
      const source = r.string(item.pattern, join(itemField, 'pattern'));
      if (source === undefined) return;
      let pattern: RegExp;
      try {
        pattern = new RegExp(source, 'g');
      } catch (error) {
        return r.fail(
          join(itemField, 'pattern'),
          `must be a valid regular expression: ${(error as Error).message}`,
        );
      }
      if (pattern.test('')) return r.fail(join(itemField, 'pattern'), 'must not match the empty string');
      pattern.lastIndex = 0;
      if (name !== undefined) extra.push({ name, pattern });
    });
  }
  r.throwIfAny();
  return { rules, extra };
}
