// @ts-check
// Client-side navigation: links marked data-nav and the back button change the view without
// reloading the page.
import { clear } from './dom.js';

/** @typedef {{ stop(): void }} View */

/** @type {{ main: HTMLElement, viewFor: (path: string) => View } | null} */
let routes = null;
/** @type {View | null} */
let view = null;

/** Stops the current view and shows the one for the address bar's path. */
export function route() {
  if (!routes) throw new Error('route() before startRouting()');
  if (view) view.stop();
  clear(routes.main);
  view = routes.viewFor(location.pathname);
}

/** @param {string | null} href a same-origin path */
export function navigate(href) {
  history.pushState(null, '', href);
  route();
}

/**
 * Follows data-nav links and the back button from now on; the first route() is the caller's.
 * @param {HTMLElement} main the views' container, emptied on every change of view
 * @param {(path: string) => View} viewFor builds the view for a path inside `main`
 */
export function startRouting(main, viewFor) {
  routes = { main, viewFor };
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a[data-nav]') : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(link.getAttribute('href'));
  });
  window.addEventListener('popstate', route);
}
