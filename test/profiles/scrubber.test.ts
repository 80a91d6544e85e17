import fc from 'fast-check';
import { luhnValid, parseScrubConfig, Scrubber, tokenLike } from '../../profiles/scrubber';
import type { ValidationError } from '../../core/validation';

describe('scrubbing values copied from logs', () => {
  test.each([
    ['mail me at jane.doe@example.com', 'mail me at <email>', 'email'],
    ['call +44 20 7946 0958', 'call <phone>', 'phone'],
    ['(555) 867-5309', '<phone>', 'phone'],
    ['15551234567', '<phone>', 'phone'],
    ['card 4111 1111 1111 1111 ok', 'card <card> ok', 'card'],
    ['378282246310005', '<card>', 'card'],
    ['from 192.168.10.4', 'from <ip>', 'ip'],
    ['2001:db8::8a2e:370:7334', '<ip>', 'ip'],
    [
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      '<token>',
      'token',
    ],
    ['reset/d41d8cd98f00b204e9800998ecf8427e', 'reset/<token>', 'token'],
    ['key sk_live_51HxQ2eKx9TqYbP0aZ7cR3mN', 'key <token>', 'token'],
  ])('%s becomes %s', (input, output, rule) => {
    const scrubber = new Scrubber();
    expect(scrubber.scrub(input)).toBe(output);
    expect(scrubber.counts).toEqual({ [rule]: 1 });
  });

  test.each([
    'red shoes',
    'Red-Running-Shoes-2024',
    'product-12345-blue-large-edition',
    'order 12345678',
    '2024-10-10',
    '10:30:00',
    'v1.2.3',
    'iphone 15 pro max 256gb',
    '4111 1111 1111 1112', // fails the Luhn check: not a card number
  ])('leaves %s alone', (input) => {
    const scrubber = new Scrubber();
    expect(scrubber.scrub(input)).toBe(input);
    expect(scrubber.counts).toEqual({});
  });

  test('Luhn check', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(tokenLike('abcdefghijklmnopqrstuvwxyz')).toBe(false);
  });

  test('rules can be turned off and extra patterns added', () => {
    const scrubber = new Scrubber(
      parseScrubConfig({ email: false, extra: [{ name: 'order_id', pattern: 'ORD-\\d{6}' }] }),
    );
    expect(scrubber.scrub('jane@example.com ORD-123456 ORD-654321')).toBe(
      'jane@example.com <order_id> <order_id>',
    );
    expect(scrubber.counts).toEqual({ order_id: 2 });
  });

  test('a bad scrub section names each field', () => {
    let issues: string[] = [];
    try {
      parseScrubConfig({
        phone: 'no',
        colour: true,
        extra: [{ name: 'email', pattern: 'x' }, { name: 'Bad Name', pattern: '.*' }, { pattern: '(' }],
      });
    } catch (error) {
      issues = (error as ValidationError).issues.map((issue) => `${issue.field}: ${issue.rule}`);
    }
    expect(issues).toEqual([
      'scrub.colour: is not a known field (known: email, token, card, ip, phone, extra)',
      'scrub.phone: must be true or false',
      'scrub.extra[0].name: email is already a rule name',
      'scrub.extra[1].name: must be 1-32 of a-z 0-9 _ starting with a letter (it becomes the placeholder <name>)',
      'scrub.extra[1].pattern: must not match the empty string',
      'scrub.extra[2].name: must be a non-empty string',
      expect.stringMatching(/^scrub\.extra\[2\]\.pattern: must be a valid regular expression/),
    ]);
  });

  test('no generated e-mail, card or address survives, whatever text surrounds it', () => {
    const word = fc.stringMatching(/^[a-z]{1,8}$/);
    const email = fc.emailAddress();
    const card = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 15, maxLength: 15 }).map((digits) => {
      // Append the Luhn check digit that makes a 16-digit card number valid.
      const body = `4${digits.join('')}`;
      for (let check = 0; check <= 9; check++) if (luhnValid(body + check)) return body + check;
      throw new Error('unreachable');
    });
    const ipv4 = fc.ipV4();
    fc.assert(
      fc.property(word, fc.oneof(email, card, ipv4), word, (before, secret, after) => {
        const scrubber = new Scrubber();
        const scrubbed = scrubber.scrub(`${before} ${secret} ${after}`);
        expect(scrubbed).not.toContain(secret);
        // Scrubbing is idempotent: placeholders match no rule.
        expect(scrubber.scrub(scrubbed)).toBe(scrubbed);
      }),
      { numRuns: 500 },
    );
  });
});
