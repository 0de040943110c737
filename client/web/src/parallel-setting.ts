// The "Parallel connections" setting: how many parts of each file go up at once (tus-js-client
// parallelUploads, the server's concatenation extension). Remembered in localStorage so a
// person sets it once; clamped to 1–8 because a browser allows only ~6 connections per host
// anyway and more parts only leave more partial uploads to clean up.

const STORAGE_KEY = 'tuspass.parallelUploads';
export const MIN_PARALLEL = 1;
export const MAX_PARALLEL = 8;

export function clampParallel(value: unknown): number {
  const n = Math.round(Number(value));
  if (!Number.isFinite(n)) return MIN_PARALLEL;
  return Math.min(MAX_PARALLEL, Math.max(MIN_PARALLEL, n));
}

/** Wires the number input to localStorage; returns a function reading the current value. */
export function attachParallelSetting(input: HTMLInputElement): () => number {
  input.min = String(MIN_PARALLEL);
  input.max = String(MAX_PARALLEL);
  input.value = String(clampParallel(readStored() ?? MIN_PARALLEL));
  input.addEventListener('change', () => {
    const value = clampParallel(input.value);
    input.value = String(value);
    try {
      localStorage.setItem(STORAGE_KEY, String(value));
    } catch {
      // No localStorage (private mode): the setting holds for this visit only.
    }
  });
  return () => clampParallel(input.value);
}

function readStored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}
