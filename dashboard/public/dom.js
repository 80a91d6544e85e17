// @ts-check
// DOM helpers. Everything shown is built with DOM nodes and text nodes (rollout, action and
// profile names are user input), never innerHTML.

/** @typedef {Node | string | number | boolean | null | undefined} Leaf */
/** @typedef {Leaf | Leaf[] | Leaf[][]} Child Arrays are flattened (JSDoc types cannot nest without end). */
/** @typedef {string | number | boolean | null | undefined} AttributeValue */
/** @typedef {Record<string, (event: Event) => void>} Listeners */
/** @typedef {Record<string, AttributeValue | Listeners>} Props `on` holds event listeners. */

/**
 * h('td', { class: 'num', 'data-label': 'Share' }, 'text', node, ...)
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {Child[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'object') {
      if (key === 'on')
        for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key === 'class') node.className = String(value);
    else if (key === 'href') node.setAttribute('href', safeHref(value));
    else node.setAttribute(key, String(value));
  }
  append(node, ...children);
  return node;
}

/**
 * Appends children in order, arrays flattened; null, undefined and false are left out.
 * @template {Node & ParentNode} N
 * @param {N} node
 * @param {Child[]} children
 * @returns {N}
 */
export function append(node, ...children) {
  for (const child of children) {
    if (Array.isArray(child)) append(node, ...child);
    else if (child === undefined || child === null || child === false) continue;
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * @template {Node} N
 * @param {N} node
 * @returns {N}
 */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/**
 * Only same-origin paths and http(s) URLs become links; anything else is inert.
 * @param {string | number | true} value
 */
export function safeHref(value) {
  const text = String(value);
  if (text.startsWith('/') && !text.startsWith('//')) return text;
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch {
    // not a URL
  }
  return '#';
}

/**
 * The element with this id, which the page's HTML must have and of this type.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`index.html has no ${type.name} #${id}`);
  return node;
}

/**
 * @param {string} kind a phase, verdict or severity; it becomes a class name
 * @param {string} [text]
 */
export function badge(kind, text) {
  return h('span', { class: `badge ${String(kind).replace(/[^a-z_]/g, '')}` }, text || kind);
}

/**
 * A link the router follows without reloading the page.
 * @param {string} href
 * @param {string} text
 */
export function navLink(href, text) {
  return h('a', { href, 'data-nav': '' }, text);
}

/**
 * A bar filled to `percent` (clamped to 0-100).
 * @param {number} percent
 */
export function barFill(percent) {
  const fill = h('span');
  fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return fill;
}
