// @ts-check
// The live line in the header and the refresh loop the views run on.
import { ApiError, config, errorMessage } from './api.js';
import { byId } from './dom.js';
import { READ_TOKEN_NEEDED, tokenDialog, tokenDialogOpen } from './token-dialog.js';

const live = byId('live', HTMLElement);

/**
 * @param {boolean} ok
 * @param {string} text
 */
export function setLive(ok, text) {
  live.className = `live ${ok ? 'ok' : 'down'}`;
  live.textContent = text;
}

/**
 * Calls `tick` now and then every refreshMs while the tab is visible; returns a stopper.
 * @param {() => Promise<void>} tick
 * @returns {() => void}
 */
export function poll(tick) {
  let stopped = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  const run = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try {
        await tick();
        setLive(true, `live · updated ${new Date().toLocaleTimeString()}`);
      } catch (error) {
        setLive(false, `not updating: ${errorMessage(error)}`);
        if (error instanceof ApiError && error.status === 401 && !tokenDialogOpen())
          tokenDialog(null, READ_TOKEN_NEEDED);
      }
    }
    if (!stopped) timer = setTimeout(run, config.refreshMs);
  };
  const wake = () => {
    if (!document.hidden && timer !== null) {
      clearTimeout(timer);
      void run();
    }
  };
  document.addEventListener('visibilitychange', wake);
  void run();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener('visibilitychange', wake);
  };
}
