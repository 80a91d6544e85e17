// @ts-check
// The canary dashboard: native ES modules, no build step. It reads the page settings, then
// shows the view for the address bar's path and follows in-page links.
import { ApiError, errorMessage, loadConfig } from './api.js';
import { loadedUPlot } from './charts.js';
import { byId } from './dom.js';
import { setLive } from './poll.js';
import { route, startRouting } from './router.js';
import { READ_TOKEN_NEEDED, tokenDialog, updateTokenButton } from './token-dialog.js';
import { rolloutView } from './views/rollout-detail.js';
import { listView } from './views/rollout-list.js';

const main = byId('main', HTMLElement);

startRouting(main, (path) => {
  const match = /^\/rollouts\/([^/]+)\/?$/.exec(path);
  if (!match) return listView(main);
  let id;
  try {
    id = decodeURIComponent(match[1] ?? '');
  } catch {
    id = '';
  }
  return rolloutView(main, id);
});

async function start() {
  updateTokenButton();
  try {
    await loadConfig();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401)
      tokenDialog(() => location.reload(), READ_TOKEN_NEEDED);
    setLive(false, `cannot reach the API: ${errorMessage(error)}`);
  }
  route();
}

if (loadedUPlot()) void start();
else window.addEventListener('load', () => void start());
