// The verified caller of a request. The auth middleware (server/auth/) verifies the bearer token and
// attaches the result to the request; everything after it (ownership checks, hooks, the catalog API)
// reads the caller through principalOf() and never looks at the Authorization header itself.
import type { IncomingMessage } from 'node:http';

export type Scope = 'upload' | 'read' | 'admin';

export interface Principal {
  /** The token's `sub` claim: the owner of what this caller creates. */
  sub: string;
  /** The token's `scope` claim, only the scopes tuspass knows. */
  scopes: ReadonlySet<Scope>;
  /** The token's `max_size` claim in bytes: the largest upload this caller may create. */
  maxSize?: number;
}

const PRINCIPAL = Symbol.for('tuspass.principal');

type WithPrincipal = IncomingMessage & { [PRINCIPAL]?: Principal; auth?: Principal };

/** The verified caller, or undefined when the request is anonymous (authentication not configured). */
export function principalOf(req: IncomingMessage): Principal | undefined {
  const r = req as WithPrincipal;
  return r[PRINCIPAL] ?? r.auth;
}

/** Set by the auth middleware once the token is verified. */
export function setPrincipal(req: IncomingMessage, principal: Principal): void {
  const r = req as WithPrincipal;
  r[PRINCIPAL] = principal;
  r.auth = principal;
}

/** Whether the caller may act on something owned by `owner` (anonymous when auth is off: everything). */
export function mayAccess(principal: Principal | undefined, owner: string | undefined): boolean {
  if (!principal) return true;
  if (principal.scopes.has('admin')) return true;
  return owner !== undefined && owner === principal.sub;
}
