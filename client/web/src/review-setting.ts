// "Review before uploading": when chosen files wait in the review list (review-list.ts) instead of
// starting at once. The default reviews several files chosen at once, as Uppy's Dashboard does
// (autoProceed off), and starts a single file at once, the commonest case on a phone.
// Remembered in localStorage, as the other settings.

const STORAGE_KEY = 'tuspass.review';
export type ReviewMode = 'several' | 'always' | 'never';
const MODES: readonly ReviewMode[] = ['several', 'always', 'never'];
export const DEFAULT_REVIEW: ReviewMode = 'several';

const asMode = (value: unknown): ReviewMode =>
  MODES.includes(value as ReviewMode) ? (value as ReviewMode) : DEFAULT_REVIEW;

/** Wires the select to localStorage; returns a function reading the current mode. */
export function attachReviewSetting(select: HTMLSelectElement): () => ReviewMode {
  select.value = asMode(readStored());
  select.addEventListener('change', () => {
    try {
      localStorage.setItem(STORAGE_KEY, asMode(select.value));
    } catch {
      // No localStorage (private mode): the setting holds for this visit only.
    }
  });
  return () => asMode(select.value);
}

/** Whether these files wait for review: always, never, or when several come at once (or some already wait). */
export function shouldReview(mode: ReviewMode, count: number, alreadyWaiting: boolean): boolean {
  if (alreadyWaiting || mode === 'always') return true;
  return mode === 'several' && count > 1;
}

function readStored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}
