/**
 * Synthetic population: seeded, so the same seed gives the same profiles, and profile i depends
 * only on (seed, i), so `--count 100` is the first hundred of `--count 10000`. Sessions come from
 * a Markov chain over the ontology's standard actions, per device type and activity level, with
 * log-normal (heavy-tailed) think times and a regional mix close to a global web shop's.
 */
import { withDerivedFields, type DeviceType, type Pattern, type Profile } from './profile-schema';
import { Random } from '../core/random';

export const DEFAULT_POPULATION = 10_000;

export interface GeneratorOptions {
  seed: number;
  count?: number;
  /** user_id prefix; ids are `<prefix>-<seed>-<index>`. */
  idPrefix?: string;
  /** Longest session, in actions (the chain usually ends well before). */
  maxPatterns?: number;
}

type Action =
  'page_view' | 'search' | 'view_product' | 'add_to_cart' | 'checkout' | 'login' | 'api_call' | 'upload';
type State = Action | 'end';
type Level = 'low' | 'medium' | 'high';
type Row = Partial<Record<State, number>>;

const DEVICE_MIX: Record<DeviceType, number> = {
  mobile: 0.56,
  desktop: 0.33,
  tablet: 0.07,
  bot: 0.03,
  tv: 0.005,
  wearable: 0.003,
  other: 0.002,
};

/** Country weights and their ISO 3166-2 regions (a profile has a region 80 % of the time). */
const REGIONS: Record<string, { weight: number; regions: string[] }> = {
  US: { weight: 0.3, regions: ['US-CA', 'US-NY', 'US-TX', 'US-FL', 'US-WA', 'US-IL'] },
  IN: { weight: 0.1, regions: ['IN-MH', 'IN-KA', 'IN-DL', 'IN-TN'] },
  DE: { weight: 0.09, regions: ['DE-BE', 'DE-BY', 'DE-NW', 'DE-HH'] },
  GB: { weight: 0.08, regions: ['GB-ENG', 'GB-SCT', 'GB-WLS'] },
  BR: { weight: 0.07, regions: ['BR-SP', 'BR-RJ', 'BR-MG'] },
  FR: { weight: 0.06, regions: ['FR-IDF', 'FR-ARA', 'FR-PAC'] },
  JP: { weight: 0.06, regions: ['JP-13', 'JP-27', 'JP-14'] },
  CA: { weight: 0.05, regions: ['CA-ON', 'CA-QC', 'CA-BC'] },
  ES: { weight: 0.04, regions: ['ES-MD', 'ES-CT'] },
  MX: { weight: 0.04, regions: ['MX-CMX', 'MX-JAL'] },
  AU: { weight: 0.04, regions: ['AU-NSW', 'AU-VIC'] },
  NL: { weight: 0.03, regions: ['NL-NH', 'NL-ZH'] },
  PL: { weight: 0.02, regions: ['PL-14', 'PL-12'] },
  SE: { weight: 0.02, regions: ['SE-AB', 'SE-O'] },
};

const LEVEL_MIX: Record<Level, number> = { low: 0.45, medium: 0.38, high: 0.17 };
const BOT_LEVEL_MIX: Record<Level, number> = { low: 0.1, medium: 0.2, high: 0.7 };

/** Median think time before the next action, and the log-normal shape (larger: heavier tail). */
const THINK_TIME: Record<Level, { medianMs: number; sigma: number }> = {
  high: { medianMs: 4_000, sigma: 0.6 },
  medium: { medianMs: 15_000, sigma: 0.8 },
  low: { medianMs: 45_000, sigma: 1.0 },
};
const MAX_THINK_MS = 20 * 60_000;

/** Longer sessions for busier users: the chain's exit probability is scaled per level. */
const EXIT_SCALE: Record<Level, number> = { high: 0.55, medium: 1, low: 1.4 };

const HUMAN_START: Row = { page_view: 0.6, search: 0.15, view_product: 0.15, login: 0.1 };
const HUMAN_CHAIN: Record<Action, Row> = {
  page_view: { page_view: 0.2, search: 0.25, view_product: 0.3, login: 0.05, api_call: 0.02, end: 0.18 },
  search: { search: 0.15, view_product: 0.55, page_view: 0.1, end: 0.2 },
  view_product: {
    view_product: 0.25,
    add_to_cart: 0.2,
    search: 0.2,
    page_view: 0.15,
    upload: 0.02,
    end: 0.18,
  },
  add_to_cart: { checkout: 0.35, view_product: 0.3, search: 0.1, page_view: 0.1, end: 0.15 },
  checkout: { page_view: 0.3, view_product: 0.1, end: 0.6 },
  login: { page_view: 0.4, search: 0.2, view_product: 0.2, upload: 0.05, end: 0.15 },
  api_call: { api_call: 0.4, page_view: 0.3, end: 0.3 },
  upload: { page_view: 0.4, view_product: 0.2, end: 0.4 },
};

const BOT_START: Row = { page_view: 0.4, api_call: 0.4, view_product: 0.2 };
const BOT_CHAIN: Record<Action, Row> = {
  page_view: { page_view: 0.35, view_product: 0.3, api_call: 0.2, search: 0.05, end: 0.1 },
  search: { view_product: 0.6, search: 0.2, end: 0.2 },
  view_product: { view_product: 0.5, page_view: 0.25, api_call: 0.1, end: 0.15 },
  add_to_cart: { view_product: 0.5, end: 0.5 },
  checkout: { end: 1 },
  login: { api_call: 0.5, end: 0.5 },
  api_call: { api_call: 0.7, page_view: 0.1, end: 0.2 },
  upload: { end: 1 },
};

/** Per-device nudges to the human chain: phones search more and upload less, desktops buy more. */
const DEVICE_BIAS: Partial<Record<DeviceType, Partial<Record<State, number>>>> = {
  mobile: { search: 1.2, upload: 0.5, end: 1.1 },
  desktop: { add_to_cart: 1.15, upload: 1.3, api_call: 1.2 },
  tablet: { view_product: 1.2, checkout: 0.9 },
  tv: { search: 0.5, upload: 0, end: 1.3 },
  wearable: { upload: 0, checkout: 0.5, end: 1.5 },
};

const SEARCH_TERMS = [
  'shoes',
  'running shoes',
  'red dress',
  'laptop',
  'usb c cable',
  'coffee beans',
  'headphones',
  'rain jacket',
  'backpack',
  'phone case',
  'desk lamp',
  'yoga mat',
  'water bottle',
  'sunglasses',
  'kids toys',
  'gift card',
  'winter boots',
  'office chair',
  'monitor 27 inch',
  'garden hose',
];
const API_ENDPOINTS = ['status', 'products', 'cart', 'recommendations'];
const PAYMENT_METHODS = { card: 0.7, paypal: 0.25, invoice: 0.05 };
export const CATALOGUE_SIZE = 500;

/** Rough server cost and response size per action, for resource_intensity. */
const ACTION_COST: Record<Action, { cpuMs: number; bytes: number }> = {
  page_view: { cpuMs: 8, bytes: 90_000 },
  search: { cpuMs: 25, bytes: 30_000 },
  view_product: { cpuMs: 12, bytes: 60_000 },
  add_to_cart: { cpuMs: 15, bytes: 2_000 },
  checkout: { cpuMs: 60, bytes: 4_000 },
  login: { cpuMs: 30, bytes: 1_500 },
  api_call: { cpuMs: 5, bytes: 3_000 },
  upload: { cpuMs: 40, bytes: 500 },
};

export function* generateProfiles(options: GeneratorOptions): Generator<Profile> {
  const count = options.count ?? DEFAULT_POPULATION;
  for (let index = 0; index < count; index++) yield generateProfile(options, index);
}

export function generateProfile(options: GeneratorOptions, index: number): Profile {
  const random = Random.fromText(`${options.seed}:${index}`);
  const device = random.weighted(DEVICE_MIX);
  const country = random.weighted(
    Object.fromEntries(Object.entries(REGIONS).map(([code, spec]) => [code, spec.weight])),
  );
  const regions = (REGIONS[country] as { regions: string[] }).regions;
  const region = random.next() < 0.8 ? random.pick(regions) : undefined;
  const level = random.weighted(device === 'bot' ? BOT_LEVEL_MIX : LEVEL_MIX);
  const userId = `${options.idPrefix ?? 'syn'}-${options.seed}-${String(index).padStart(7, '0')}`;
  const patterns = session(random, device, level, index, options.maxPatterns ?? 200);
  return withDerivedFields({
    user_id: userId,
    behavioral_patterns: patterns,
    resource_intensity: resources(random, patterns),
    geo_location: { country, ...(region ? { region } : {}) },
    device_type: device,
  });
}

function session(
  random: Random,
  device: DeviceType,
  level: Level,
  index: number,
  maxPatterns: number,
): Pattern[] {
  const bot = device === 'bot';
  const chain = bot ? BOT_CHAIN : HUMAN_CHAIN;
  const bias = bot ? {} : (DEVICE_BIAS[device] ?? {});
  const think = bot ? { medianMs: 800, sigma: 0.5 } : THINK_TIME[level];
  const patterns: Pattern[] = [];
  let state: State = next(random, bot ? BOT_START : HUMAN_START, bias, 1);
  let time = Math.round(random.next() * 2000);
  let lastProduct: number | undefined;
  while (state !== 'end' && patterns.length < maxPatterns) {
    const data = dataFor(random, state, index, lastProduct);
    if (state === 'view_product') lastProduct = Number(data?.product_id);
    patterns.push({ timestamp: time, action: state, ...(data ? { data } : {}) });
    time += Math.round(Math.min(MAX_THINK_MS, random.logNormal(think.medianMs, think.sigma)));
    state = next(random, chain[state], bias, bot ? 1 : EXIT_SCALE[level]);
  }
  return patterns;
}

function next(random: Random, row: Row, bias: Partial<Record<State, number>>, exitScale: number): State {
  const weights: Partial<Record<State, number>> = {};
  for (const [state, weight] of Object.entries(row) as [State, number][]) {
    const scaled = weight * (bias[state] ?? 1) * (state === 'end' ? exitScale : 1);
    if (scaled > 0) weights[state] = scaled;
  }
  return random.weighted(weights as Record<State, number>);
}

function dataFor(
  random: Random,
  action: Action,
  index: number,
  lastProduct: number | undefined,
): Pattern['data'] {
  switch (action) {
    case 'page_view':
      return undefined;
    case 'search':
      return { query: SEARCH_TERMS[random.zipf(SEARCH_TERMS.length)] as string };
    case 'view_product':
      return { product_id: random.zipf(CATALOGUE_SIZE) + 1 };
    case 'add_to_cart':
      return {
        product_id: lastProduct ?? random.zipf(CATALOGUE_SIZE) + 1,
        quantity: Number(random.weighted({ 1: 0.8, 2: 0.15, 3: 0.05 })),
      };
    case 'checkout':
      return { payment_method: random.weighted(PAYMENT_METHODS) };
    case 'login':
      return { username: `shopper${index}` };
    case 'api_call':
      return { endpoint: random.pick(API_ENDPOINTS) };
    case 'upload':
      return { size_bytes: Math.min(10_485_760, Math.round(random.logNormal(200_000, 1))) };
  }
}

function resources(random: Random, patterns: Pattern[]): Profile['resource_intensity'] {
  let cpu = 0;
  let bytes = 0;
  for (const pattern of patterns) {
    const cost = ACTION_COST[pattern.action as Action];
    const jitter = 0.7 + random.next() * 0.6;
    cpu += cost.cpuMs * jitter;
    bytes += cost.bytes * jitter + (pattern.action === 'upload' ? Number(pattern.data?.size_bytes ?? 0) : 0);
  }
  const last = patterns[patterns.length - 1]?.timestamp ?? 0;
  return {
    period_ms: Math.max(60_000, Math.ceil(last / 1000) * 1000),
    cpu_ms: Math.round(cpu),
    memory_mb:
      Math.round(
        (24 + 3 * new Set(patterns.map((pattern) => pattern.action)).size + random.next() * 16) * 10,
      ) / 10,
    network_bytes: Math.round(bytes),
  };
}
