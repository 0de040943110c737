// The bearer token the page sends on every tus and API request (server/auth/). Typed into the
// "Access token" field, or handed over by an app linking to `…/#token=<JWT>`: the fragment never
// reaches a server (nor its logs); it is read, remembered and removed from the address bar, so it
// is not left in the history or in a copied link. Remembered in localStorage, as the other settings.

const STORAGE_KEY = 'tuspass.token';

/** Wires the field to localStorage and the #token= fragment; returns a function reading the current token. */
export function attachTokenSetting(input: HTMLInputElement): () => string | undefined {
  const fromLink = tokenFromFragment();
  if (fromLink) {
    store(fromLink);
    const url = new URL(window.location.href);
    url.hash = '';
    history.replaceState(history.state, '', url.pathname + url.search);
  }
  input.value = fromLink ?? readStored() ?? '';
  input.addEventListener('change', () => store(input.value.trim()));
  return () => input.value.trim() || undefined;
}

/** Authorization for a request, when there is a token. */
export const authHeaders = (token: string | undefined): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

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
