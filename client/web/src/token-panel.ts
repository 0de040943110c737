// The bearer token the page sends on every tus and API request (server/auth/), in a panel of its
// own above the uploads: shown once the server asks for a token (or one is remembered), so that a
// refused upload and the field that fixes it are on the screen together — also on a phone, where an
// unfolded Settings section pushed the refused upload below the screen. Typed into the field, or
// handed over by an app linking to `…/#token=<JWT>`: the fragment never reaches a server (nor its
// logs); it is read, remembered and removed from the address bar, so it is not left in the history
// or in a copied link. Remembered in localStorage, as the settings are.
import { byId } from './dom.ts';
import { tokenFieldMessage, type TokenProblem } from './failure-advice.ts';

const STORAGE_KEY = 'tuspass.token';

/** Authorization for a request, when there is a token. */
export const authHeaders = (token: string | undefined): Record<string, string> =>
  token ? { Authorization: `Bearer ${token}` } : {};

export class TokenPanel {
  private readonly panel = byId<HTMLElement>('token-panel');
  private readonly input = byId<HTMLInputElement>('setting-token');
  private readonly message = byId<HTMLParagraphElement>('token-message');
  private readonly use = byId<HTMLButtonElement>('token-use');
  /** The message beside the field is about a refused upload (kept until the token is used), not only the list. */
  private refusal = false;

  /** `onUse`: the person pressed "Use this token" (or Enter in the field): retry what the token held back. */
  constructor(onUse: () => void) {
    // First, before anything is fetched: a #token= fragment is taken out of the address bar at once.
    const fromLink = tokenFromFragment();
    if (fromLink) {
      store(fromLink);
      const url = new URL(window.location.href);
      url.hash = '';
      history.replaceState(history.state, '', url.pathname + url.search);
    }
    this.input.value = fromLink ?? readStored() ?? '';
    this.panel.hidden = !this.input.value;
    this.input.addEventListener('change', () => store(this.input.value.trim()));
    byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      store(this.input.value.trim());
      this.refusal = false;
      this.showMessage('', 'info');
      this.input.removeAttribute('aria-invalid');
      onUse();
    });
  }

  get token(): string | undefined {
    return this.input.value.trim() || undefined;
  }

  /** The list of completed uploads was refused: the panel shows, without taking the focus. */
  needed(): void {
    this.panel.hidden = false;
    if (this.refusal) return;
    this.showMessage(
      this.token
        ? 'The server did not accept this access token for listing your uploads.'
        : 'This server needs an access token to upload and to list your uploads.',
      'info',
    );
  }

  /** The list loaded: a message about the list alone is no longer true. */
  listed(): void {
    if (!this.refusal) this.showMessage('', 'info');
  }

  /** An upload was refused for its token: the field says which and why, is marked invalid, and takes the focus. */
  refused(problem: TokenProblem, fileName: string): void {
    this.panel.hidden = false;
    this.refusal = true;
    this.showMessage(tokenFieldMessage(problem, fileName), 'error');
    this.input.setAttribute('aria-invalid', 'true');
    this.input.focus();
  }

  /** "Use this token and retry" while uploads wait for a better token. */
  set retries(waiting: boolean) {
    this.use.textContent = waiting ? 'Use this token and retry' : 'Use this token';
  }

  private showMessage(text: string, kind: 'info' | 'error'): void {
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.className = `token-message ${kind}`;
  }
}

function tokenFromFragment(): string | undefined {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const token = params.get('token')?.trim();
  return token || undefined;
}

function store(token: string): void {
  try {
    if (token) localStorage.setItem(STORAGE_KEY, token);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // No localStorage (private mode): the token holds for this visit only.
  }
}

function readStored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}
