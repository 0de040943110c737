// The names that cross the wire between tuspass's parts and their clients: headers beyond tus's own,
// id forms. One home, so the server, the hooks and the clients cannot drift apart.

/** The answer header of a final PATCH: delivered, pending (queued) or rejected (docs/completion-form.md). */
export const COMPLETION_HEADER = 'Tuspass-Completion';

/** A request's id: kept from a proxy when sane, else assigned; echoed in answers and hook payloads. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The request id a hook payload's headers carry (the server puts it there, lower-cased). */
export function requestIdOfHeaders(header: Record<string, string[] | undefined> | undefined): string | undefined {
  return header?.[REQUEST_ID_HEADER]?.[0];
}
