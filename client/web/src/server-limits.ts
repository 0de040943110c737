// The limits the server announces before anything is sent: an OPTIONS request to the tus endpoint
// answers Tus-Max-Size (MAX_SIZE, or the token's max_size when smaller — the bearer token goes with
// it). The page shows it by the drop zone and refuses a larger file itself, with a plain message,
// instead of letting the server answer 413 after the creation request.

export interface ServerLimits {
  /** Largest upload in bytes; undefined when the server announces none or could not be asked. */
  maxSize: number | undefined;
}

export async function fetchServerLimits(endpoint: string, headers: Record<string, string>): Promise<ServerLimits> {
  try {
    const res = await fetch(endpoint, {
      method: 'OPTIONS',
      headers: { ...headers, 'Tus-Resumable': '1.0.0' },
      cache: 'no-store',
    });
    const value = Number(res.headers.get('Tus-Max-Size'));
    return { maxSize: Number.isSafeInteger(value) && value > 0 ? value : undefined };
  } catch {
    return { maxSize: undefined };
  }
}
