// @ts-check
// The dialog that asks for the API token, and the header button that opens it.
import { forgetToken, saveToken, token } from './api.js';
import { byId } from './dom.js';

export const READ_TOKEN_NEEDED = 'This dashboard needs the API token to read.';

const dialog = byId('token-dialog', HTMLDialogElement);
const input = byId('token-input', HTMLInputElement);
const error = byId('token-error', HTMLElement);
const button = byId('token-button', HTMLButtonElement);

/**
 * Asks for the token; `then` runs once it is saved.
 * @param {(() => void) | null} [then]
 * @param {string} [message] why it is needed now
 */
export function tokenDialog(then, message) {
  error.textContent = message || '';
  input.value = '';
  byId('token-form', HTMLFormElement).onsubmit = (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.textContent = 'Enter the token, or Cancel.';
      return;
    }
    saveToken(value);
    dialog.close();
    updateTokenButton();
    if (then) then();
  };
  byId('token-forget', HTMLButtonElement).onclick = () => {
    forgetToken();
    updateTokenButton();
    dialog.close();
  };
  byId('token-cancel', HTMLButtonElement).onclick = () => dialog.close();
  dialog.showModal();
  input.focus();
}

export const tokenDialogOpen = () => dialog.open;

export function updateTokenButton() {
  button.textContent = token() ? 'API token ✓' : 'API token';
}

button.addEventListener('click', () => tokenDialog());
