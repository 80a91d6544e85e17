import { classifyAgent, parseClfTime, parseLine } from '../../profiles/access-log';
import { LogImporter, parseRules } from '../../profiles/log-import';
import { defaultOntology } from '../../profiles/ontology';
import { ValidationError } from '../../core/validation';

const PHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148';
const DESKTOP = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0';

function combined(
  ip: string,
  time: string,
  request: string,
  status = 200,
  bytes = 1234,
  agent = PHONE,
): string {
  return `${ip} - - [${time}] "${request}" ${status} ${bytes} "-" "${agent}"`;
}

function importer(options: Partial<ConstructorParameters<typeof LogImporter>[0]> = {}) {
  return new LogImporter({ ontology: defaultOntology(), format: 'auto', salt: 'test-salt', ...options });
}

describe('access log lines', () => {
  test('parses the combined format with its time zone', () => {
    const parsed = parseLine(
      combined('203.0.113.9', '10/Oct/2024:13:55:36 -0700', 'GET /search?q=red%20shoes HTTP/1.1'),
      'combined',
    );
    expect(parsed).toMatchObject({ record: { method: 'GET', path: '/search', status: 200, bytes: 1234 } });
    if (!('record' in parsed)) throw new Error('unreachable');
    expect(new Date(parsed.record.time).toISOString()).toBe('2024-10-10T20:55:36.000Z');
    expect(parsed.record.query.get('q')).toBe('red shoes');
    expect(parseClfTime('31/Feb/2024:99:00:00 +0000')).not.toBeUndefined(); // Date.UTC rolls over; the format is what matters
    expect(parseClfTime('yesterday')).toBeUndefined();
  });

  test('parses NGINX JSON lines', () => {
    const line = JSON.stringify({
      time_iso8601: '2024-10-10T20:55:36+00:00',
      remote_addr: '198.51.100.7',
      request: 'GET /products/42 HTTP/2.0',
      status: '200',
      body_bytes_sent: '5120',
      http_user_agent: DESKTOP,
      request_time: '0.012',
      geoip_country_code: 'de',
    });
    expect(parseLine(line, 'auto')).toMatchObject({
      record: { method: 'GET', path: '/products/42', bytes: 5120, country: 'DE', durationMs: 12 },
    });
  });

  test.each([
    ['garbage', 'malformed'],
    ['1.2.3.4 - - [not a time] "GET / HTTP/1.1" 200 1 "-" "x"', 'bad_time'],
    ['1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"', 'bad_request_line'],
    ['{"time": "2024-01-01T00:00:00Z"}', 'bad_request_line'],
    ['{not json', 'malformed'],
  ])('skips %s as %s', (line, reason) => {
    expect(parseLine(line, 'auto')).toEqual({ skip: reason });
  });

  test('tells devices apart by user agent', () => {
    expect(classifyAgent(PHONE)).toEqual({ kind: 'browser', device: 'mobile' });
    expect(classifyAgent(DESKTOP)).toEqual({ kind: 'browser', device: 'desktop' });
    expect(
      classifyAgent(
        'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1',
      ),
    ).toEqual({
      kind: 'browser',
      device: 'tablet',
    });
    expect(
      classifyAgent(
        'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36',
      ),
    ).toEqual({ kind: 'browser', device: 'tv' });
  });

  test.each([
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (compatible; ezooms/1.0; ezooms.bot@gmail.com)',
    'Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 3 subscribers; feed-id=1234567890)',
    'UniversalFeedParser/5.0.1 +http://feedparser.org/',
    'Tiny Tiny RSS/1.11 (http://tt-rss.org/)',
    'curl/8.5.0',
    'python-requests/2.31.0',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36',
  ])('%s is a bot', (agent) => {
    expect(classifyAgent(agent)).toEqual({ kind: 'bot' });
  });

  test.each(['-', '', 'Mozilla/5.0 (Unknown; Foo) Bar/1.0', 'Mozilla/5.0 (Fooboard; Qux) Gecko'])(
    '"%s" is an unknown agent',
    (agent) => {
      expect(classifyAgent(agent)).toEqual({ kind: 'unknown' });
    },
  );
});

describe('importing sessions', () => {
  test('groups requests per client into sessions at the inactivity gap and maps paths to actions', () => {
    const run = importer({ sessionGapMs: 30 * 60_000 });
    const lines = [
      combined('203.0.113.9', '10/Oct/2024:10:00:00 +0000', 'GET / HTTP/1.1'),
      combined('203.0.113.9', '10/Oct/2024:10:00:05 +0000', 'GET /static/app.js HTTP/1.1'),
      combined('203.0.113.9', '10/Oct/2024:10:00:09 +0000', 'GET /search?q=boots HTTP/1.1'),
      combined('203.0.113.9', '10/Oct/2024:10:00:20 +0000', 'GET /products/17 HTTP/1.1'),
      combined('203.0.113.9', '10/Oct/2024:10:00:30 +0000', 'POST /cart/items HTTP/1.1'),
      combined('203.0.113.9', '10/Oct/2024:10:01:00 +0000', 'POST /checkout HTTP/1.1'),
      // 2 hours later: a new session of the same client
      combined('203.0.113.9', '10/Oct/2024:12:01:00 +0000', 'GET /api/status HTTP/1.1'),
      // another client (same address, other browser)
      combined('203.0.113.9', '10/Oct/2024:10:00:03 +0000', 'GET /favicon.ico HTTP/1.1', 200, 100, DESKTOP),
      combined('203.0.113.9', '10/Oct/2024:10:00:04 +0000', 'GET /wp-admin HTTP/1.1', 404, 100, DESKTOP),
      combined('203.0.113.9', '10/Oct/2024:10:00:08 +0000', 'POST /cart/items HTTP/1.1', 200, 100, DESKTOP),
      'not a log line',
      '',
    ];
    for (const line of lines) run.addLine(line);
    const profiles = [...run.profiles()];
    expect(run.report).toMatchObject({
      lines: 11,
      parsed: 10,
      mapped: 7,
      skipped: { malformed: 1, ignored_by_rule: 2, no_matching_rule: 1 },
      examples: { malformed: [11], ignored_by_rule: [2, 8], no_matching_rule: [9] },
      clients: 2,
      sessions: 3,
      profiles: 2,
      droppedSessions: {
        'invalid:behavioral_patterns[].data.product_id: is required by action add_to_cart (POST /cart/items)': 1,
      },
    });
    const [first, second] = profiles.sort((a, b) => a.pattern_count - b.pattern_count).reverse();
    expect(first?.behavioral_patterns).toEqual([
      { timestamp: 0, action: 'page_view' },
      { timestamp: 9000, action: 'search', data: { query: 'boots' } },
      { timestamp: 20000, action: 'view_product', data: { product_id: '17' } },
      { timestamp: 30000, action: 'add_to_cart', data: { product_id: '17' } },
      { timestamp: 60000, action: 'checkout' },
    ]);
    expect(first).toMatchObject({
      device_type: 'mobile',
      geo_location: { country: 'ZZ' },
      resource_intensity: { network_bytes: 5 * 1234 },
    });
    expect(second?.behavioral_patterns).toEqual([
      { timestamp: 0, action: 'api_call', data: { endpoint: 'status' } },
    ]);
    // Client identities are salted hashes: no address in any id, and another salt gives other ids.
    for (const profile of profiles) expect(profile.user_id).not.toContain('203.0.113.9');
    const other = importer({ salt: 'other-salt' });
    for (const line of lines) other.addLine(line);
    expect([...other.profiles()].map((p) => p.user_id)).not.toEqual(profiles.map((p) => p.user_id));
  });

  test('custom rules map paths with captures and query parameters', () => {
    const rules = parseRules([
      { method: 'GET', path: '/item/:sku', action: 'view_product', data: { product_id: '{sku}' } },
      { path: 're:^/find$', action: 'search', data: { query: '{query.term}' } },
    ]);
    const run = importer({ rules, format: 'json' });
    const ua = DESKTOP;
    run.addLine(
      JSON.stringify({ ts: 1_700_000_000, client_id: 'c1', ua, method: 'GET', path: '/item/ab-1' }),
    );
    run.addLine(
      JSON.stringify({ ts: 1_700_000_004, client_id: 'c1', ua, method: 'GET', uri: '/find?term=lamp' }),
    );
    const [profile] = [...run.profiles()];
    expect(profile?.behavioral_patterns).toEqual([
      { timestamp: 0, action: 'view_product', data: { product_id: 'ab-1' } },
      { timestamp: 4000, action: 'search', data: { query: 'lamp' } },
    ]);
  });

  test('bad rules and a missing salt are ValidationErrors naming the field', () => {
    expect(() => parseRules([{ path: 'items', action: 'Bad' }])).toThrow(ValidationError);
    try {
      parseRules([{ path: 'items', action: 'Bad', colour: 1 }]);
    } catch (error) {
      expect((error as ValidationError).issues.map((issue) => issue.field)).toEqual([
        'rules[0].colour',
        'rules[0].path',
        'rules[0].action',
      ]);
    }
    expect(() => importer({ salt: '' })).toThrow('salt: is required');
  });
});
