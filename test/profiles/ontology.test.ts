import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkResponse,
  defaultOntology,
  loadOntology,
  parseOntology,
  renderRequest,
  type Ontology,
} from '../../profiles/ontology';
import { ValidationError } from '../../core/validation';
import { issuesOf } from '../support/issues';

const shop = defaultOntology();

describe('the default ontology', () => {
  test('covers the standard actions of the sample shop', () => {
    expect(Object.keys(shop.actions)).toEqual([
      'page_view',
      'search',
      'view_product',
      'add_to_cart',
      'checkout',
      'login',
      'api_call',
      'upload',
    ]);
    expect(`${shop.name}@${shop.version}`).toBe('shop@1.0.0');
  });

  test.each([
    ['page_view', {}, 'GET', '/', undefined],
    ['page_view', { path: '/deals/summer' }, 'GET', '/deals/summer', undefined],
    ['search', { query: 'red shoes & socks' }, 'GET', '/search?q=red+shoes+%26+socks', undefined],
    ['view_product', { product_id: 42 }, 'GET', '/products/42', undefined],
    ['view_product', { product_id: 'sku-7.b' }, 'GET', '/products/sku-7.b', undefined],
    ['add_to_cart', { product_id: 42 }, 'POST', '/cart/items', '{"product_id":42,"quantity":1}'],
    [
      'add_to_cart',
      { product_id: 'p1', quantity: 3 },
      'POST',
      '/cart/items',
      '{"product_id":"p1","quantity":3}',
    ],
    ['checkout', {}, 'POST', '/checkout', '{"payment_method":"card"}'],
    ['login', { username: 'ada' }, 'POST', '/login', '{"username":"ada"}'],
    ['api_call', { endpoint: 'products/42' }, 'GET', '/api/products/42', undefined],
  ])('renders %s %j as %s %s', (action, data, method, requestPath, body) => {
    const request = renderRequest(shop, action, data);
    expect(request.method).toBe(method);
    expect(request.path).toBe(requestPath);
    expect(request.body).toBe(body);
    expect(request.headers.accept).toBe('application/json');
    if (body) expect(request.headers['content-type']).toBe('application/json');
  });

  test('upload sends a payload of exactly size_bytes', () => {
    const request = renderRequest(shop, 'upload', { size_bytes: 5000 });
    expect(request.body).toHaveLength(5000);
    expect(request.headers['content-type']).toBe('application/octet-stream');
    expect(renderRequest(shop, 'upload').body).toHaveLength(1024);
  });

  test('names the missing or ill-typed field', () => {
    expect(issuesOf(() => renderRequest(shop, 'view_product', {}))).toEqual([
      'data.product_id: is required by action view_product (path /products/{product_id})',
    ]);
    expect(issuesOf(() => renderRequest(shop, 'view_product', { product_id: '../admin' }))).toEqual([
      'data.product_id: must be an id: 1-128 of A-Z a-z 0-9 . _ ~ - (or a non-negative integer)',
    ]);
    expect(issuesOf(() => renderRequest(shop, 'add_to_cart', { product_id: 1, quantity: '2' }))).toEqual([
      'data.quantity: must be an integer',
    ]);
    expect(issuesOf(() => renderRequest(shop, 'search', { query: 'x', colour: 'red' }))).toEqual([
      'data.colour: is not a parameter of action search (known: query)',
    ]);
    expect(issuesOf(() => renderRequest(shop, 'teleport', {}))[0]).toMatch(
      /^action: must be an action of ontology shop@1.0.0/,
    );
    // Names Object.prototype carries are not actions either (the loadgen renders every entry here).
    for (const inherited of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
      expect(issuesOf(() => renderRequest(shop, inherited, {}))[0]).toMatch(
        /^action: must be an action of ontology shop@1.0.0/,
      );
    expect(issuesOf(() => renderRequest(shop, 'page_view', { path: '/a/../../etc' }))).toEqual([
      'data: renders the path /a/../../etc, which contains . or .. segments',
    ]);
  });

  test('URL-encodes every path value: arbitrary ids never escape their segment, dot segments are refused', () => {
    const custom = parseOntology({
      name: 'x',
      version: '1.0.0',
      actions: {
        item: {
          request: { method: 'GET', path: '/items/{name}' },
          params: { name: { type: 'string' } },
          expect: { status: [200] },
        },
      },
    });
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (name) => {
        if (name === '.' || name === '..') {
          expect(() => renderRequest(custom, 'item', { name })).toThrow('contains . or .. segments');
          return;
        }
        const request = renderRequest(custom, 'item', { name });
        const segment = request.path.slice('/items/'.length);
        expect(segment).not.toMatch(/[/?#]/);
        expect(decodeURIComponent(segment)).toBe(name);
      }),
      { numRuns: 500 },
    );
  });

  test('checks responses by status and JSON field', () => {
    const expect_ = shop.actions.checkout?.expect;
    expect(checkResponse(expect_!, { status: 201, body: '{"order_id":"o-1"}' })).toEqual({ ok: true });
    expect(checkResponse(expect_!, { status: 500, body: '' })).toEqual({
      ok: false,
      reason: 'status 500 not in [200, 201]',
    });
    expect(checkResponse(expect_!, { status: 200, body: '{"id":1}' })).toEqual({
      ok: false,
      reason: 'JSON field order_id is missing',
    });
    expect(checkResponse(expect_!, { status: 200, body: '<html>' }).ok).toBe(false);
  });
});

describe('loading a user ontology', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-ontology-'));

  test('loads JSON and YAML files', () => {
    const document = {
      name: 'blog',
      version: '2.1.0',
      actions: {
        read_post: {
          request: { method: 'GET', path: '/posts/{slug}', headers: { 'x-tenant': '{tenant}' } },
          params: {
            slug: { type: 'string', pattern: '^[a-z-]+$' },
            tenant: { type: 'string', default: 'main' },
          },
          expect: { status: [200], json: 'post.title' },
        },
      },
    };
    writeFileSync(path.join(dir, 'blog.json'), JSON.stringify(document));
    const ontology: Ontology = loadOntology(path.join(dir, 'blog.json'));
    expect(renderRequest(ontology, 'read_post', { slug: 'hello' })).toMatchObject({
      path: '/posts/hello',
      headers: { 'x-tenant': 'main' },
    });
    writeFileSync(
      path.join(dir, 'blog.yaml'),
      'name: blog\nversion: 2.1.0\nactions:\n  home:\n    request: { method: GET, path: / }\n    expect: { status: [200] }\n',
    );
    expect(Object.keys(loadOntology(path.join(dir, 'blog.yaml')).actions)).toEqual(['home']);
  });

  test('reports every problem of a bad file by field', () => {
    const issues = issuesOf(() =>
      parseOntology({
        name: 'bad name!',
        version: 'one',
        colour: 'red',
        actions: {
          'Bad-Name': {},
          fetch: {
            request: { method: 'FETCH', path: 'items/{id}?x=1', body: { json: { a: '{b}' } } },
            params: { id: { type: 'uuid' } },
            expect: { status: [99] },
          },
          get_body: {
            request: { method: 'GET', path: '/x', body: { json: {} } },
            expect: { status: [200], json: 'a..b' },
          },
        },
      }),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        'colour: is not a known field (known: name, version, description, headers, actions)',
        'name: must be 1-64 of A-Z a-z 0-9 . _ -',
        'version: must be a semantic version such as 1.0.0',
        'actions.Bad-Name: action names must match ^[a-z][a-z0-9_]{0,63}$',
        'actions.fetch.params.id.type: must be one of string, integer, number, boolean, id',
        'actions.fetch.request.method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE',
        'actions.fetch.request.path: must start with / (or with a {+param} that holds a path)',
        'actions.fetch.request.path: must not contain ?, # or spaces: put query parameters under query',
        'actions.fetch.request.body.json: uses {b} which is not a declared param',
        'actions.fetch.expect.status[0]: must be >= 100',
        'actions.get_body.request.body: must be absent for GET requests',
        'actions.get_body.expect.json: must be a dotted field path such as order_id or cart.items',
      ]),
    );
  });

  test('a missing or unparsable file is a ValidationError naming the file', () => {
    expect(issuesOf(() => loadOntology(path.join(dir, 'missing.yaml')))[0]).toMatch(
      /^ontology: cannot read .*missing.yaml/,
    );
    writeFileSync(path.join(dir, 'broken.json'), '{');
    expect(issuesOf(() => loadOntology(path.join(dir, 'broken.json')))[0]).toMatch(
      /^ontology: .*broken.json is not valid JSON/,
    );
  });

  test('never throws anything but a ValidationError, whatever the document', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (document) => {
        try {
          parseOntology(document);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
