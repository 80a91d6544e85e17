// @ts-check
// The controls of one rollout: pause, resume, roll back, promote. Each opens a dialog that
// asks for a reason (roll back needs one) and for the API token if the tab has none yet.
/** @import { RolloutSummary } from '../api-types.js' */
import { ApiError, config, errorMessage, sendControl, token } from '../api.js';
import { byId, h } from '../dom.js';
import { tokenDialog } from '../token-dialog.js';

/**
 * @typedef {object} ControlText
 * @property {string} title
 * @property {string} text
 * @property {'optional' | 'required' | null} reason
 * @property {string} done
 */

/** @typedef {'pause' | 'resume' | 'rollback' | 'promote'} ControlKind */

/** @type {Record<ControlKind, ControlText>} */
const CONTROL_TEXT = {
  pause: {
    title: 'Pause',
    text: 'Hold the canary at its current share until someone resumes.',
    reason: 'optional',
    done: 'Pause sent',
  },
  resume: {
    title: 'Resume',
    text: 'Continue the rollout from where it was paused.',
    reason: null,
    done: 'Resume sent',
  },
  rollback: {
    title: 'Roll back',
    text: 'Take the canary out of real traffic now. The rollout ends as rolled back.',
    reason: 'required',
    done: 'Rollback sent',
  },
  promote: {
    title: 'Promote',
    text: 'Give the canary all traffic now. The rollout ends as promoted.',
    reason: 'optional',
    done: 'Promote sent',
  },
};

/**
 * The buttons (rebuilt with every summary) and the line that says what was last sent.
 * @param {string} rolloutId
 * @param {() => Promise<void>} refresh reloads the rollout once a control was sent
 */
export function rolloutControls(rolloutId, refresh) {
  const status = h('div', { class: 'control-status muted', id: 'control-status', role: 'status' });

  /**
   * @param {ControlKind} kind
   * @param {string} subject what the dialog names, e.g. `shop v2`
   */
  const open = (kind, subject) =>
    controlDialog(kind, subject, async (body) => {
      await sendControl(rolloutId, kind, body);
      status.textContent = `${CONTROL_TEXT[kind].done} at ${new Date().toLocaleTimeString()}; the rollout applies it on its next step.`;
      await refresh().catch(() => undefined);
    });

  /** @param {RolloutSummary} summary */
  const buttons = (summary) => {
    const phase = summary.phase;
    const paused = phase === 'paused';
    // A decided rollout may still be finishing its routing: it takes no more controls.
    const running =
      summary.execution === 'RUNNING' && !['promoted', 'rolled_back', 'aborted'].includes(phase);
    const disabledWhy = !running
      ? 'the rollout has ended'
      : !config.controls
        ? 'the server has no API token configured'
        : null;
    /**
     * @param {ControlKind} name
     * @param {string} label
     * @param {string} cls
     * @param {boolean} enabled
     */
    const button = (name, label, cls, enabled) =>
      h(
        'button',
        {
          type: 'button',
          id: `control-${name}`,
          class: cls,
          disabled: !enabled || disabledWhy !== null,
          title: disabledWhy ? `Unavailable: ${disabledWhy}` : null,
          on: { click: () => open(name, `${summary.service} ${summary.version}`) },
        },
        label,
      );
    return h(
      'div',
      { class: 'controls', role: 'group', 'aria-label': 'Controls' },
      button('pause', 'Pause', 'warn', !paused),
      button('resume', 'Resume', 'ok', paused),
      button('rollback', 'Roll back', 'danger', true),
      button('promote', 'Promote', '', true),
    );
  };

  return { status, buttons };
}

/**
 * @param {ControlKind} kind
 * @param {string} subject
 * @param {(body: { reason?: string }) => Promise<void>} send
 */
function controlDialog(kind, subject, send) {
  const dialog = byId('control-dialog', HTMLDialogElement);
  const form = byId('control-form', HTMLFormElement);
  const reason = byId('reason-input', HTMLTextAreaElement);
  const reasonLabel = byId('reason-label', HTMLLabelElement);
  const error = byId('control-error', HTMLElement);
  const ok = byId('control-ok', HTMLButtonElement);
  const text = CONTROL_TEXT[kind];
  byId('control-title', HTMLElement).textContent = `${text.title}: ${subject}`;
  byId('control-text', HTMLElement).textContent = text.text;
  reason.value = '';
  reason.setAttribute('aria-required', String(text.reason === 'required'));
  reason.hidden = reasonLabel.hidden = text.reason === null;
  reasonLabel.textContent = text.reason === 'required' ? 'Reason (required)' : 'Reason (optional)';
  ok.textContent = text.title;
  ok.className = kind === 'rollback' ? 'danger' : kind === 'pause' ? 'warn' : kind === 'resume' ? 'ok' : '';
  error.textContent = '';
  form.onsubmit = async (event) => {
    event.preventDefault();
    /** @type {{ reason?: string }} */
    const body = {};
    if (text.reason !== null && reason.value.trim()) body.reason = reason.value.trim();
    if (text.reason === 'required' && !body.reason) {
      error.textContent = 'Please say why: the reason is recorded and sent with the alert.';
      reason.focus();
      return;
    }
    if (!token()) {
      error.textContent = 'Controls need the API token.';
      tokenDialog(() => form.requestSubmit());
      return;
    }
    ok.disabled = true;
    try {
      await send(body);
      dialog.close();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) {
        error.textContent = failure.message;
        tokenDialog(() => form.requestSubmit(), failure.message);
      } else error.textContent = failureText(failure);
    } finally {
      ok.disabled = false;
    }
  };
  byId('control-cancel', HTMLButtonElement).onclick = () => dialog.close();
  dialog.showModal();
  if (!reason.hidden) reason.focus();
}

/**
 * The fields and rules a 400 named, or the error's message.
 * @param {unknown} failure
 */
function failureText(failure) {
  if (failure instanceof ApiError && failure.issues.length)
    return failure.issues.map((i) => `${i.field}: ${i.rule}`).join('; ');
  return errorMessage(failure);
}
