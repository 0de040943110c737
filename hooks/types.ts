// The hook contract. Payload and answer follow tusd v2's hook format field for field, so that a hook
// written for tusd runs on tuspass unchanged; tuspass adds `Digests` to the upload.
// Described for hook authors in docs/hooks.md; re-exported from hooks/index.ts.
import { parseList } from '../core/parse.ts';
import type { Digests } from '../core/wire.ts';

/**
 * tusd's event names. `pre-*` events block the request and may reject it; `post-*` events are notices.
 * `pre-access` is the per-upload authorization tusd users have long asked for, named and answered
 * as tusd's proposed `pre-access` hook: before any request reads or writes an existing upload.
 */
export const HOOK_EVENTS = [
  'pre-create',
  'post-create',
  'pre-access',
  'post-receive',
  'pre-finish',
  'post-finish',
  'pre-terminate',
  'post-terminate',
] as const;
export type HookEventType = (typeof HOOK_EVENTS)[number];

/**
 * tusd's default for -hooks-enabled-events: everything but pre-finish and pre-terminate (and pre-access, off unless
 * asked for, as proposed for tusd).
 */
export const DEFAULT_ENABLED_EVENTS: readonly HookEventType[] = [
  'pre-create',
  'post-create',
  'post-receive',
  'post-terminate',
  'post-finish',
];

export const isBlocking = (type: HookEventType): boolean => type.startsWith('pre-');
export const isHookEvent = (name: string): name is HookEventType => (HOOK_EVENTS as readonly string[]).includes(name);

/** A comma-separated list of event names (HOOKS_ENABLED_EVENTS and the like); unknown names are refused by name. */
export function parseEventList(raw: string): HookEventType[] {
  const names = parseList(raw);
  const unknown = names.filter((n) => !isHookEvent(n));
  if (unknown.length)
    throw new Error(`unknown hook event ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${HOOK_EVENTS.join(', ')}`);
  return [...new Set(names)] as HookEventType[];
}

export interface HookUpload {
  /** The upload's id (in pre-create: the id it will get unless a hook changes it). */
  ID: string;
  Size: number;
  SizeIsDeferred: boolean;
  Offset: number;
  MetaData: Record<string, string>;
  IsPartial: boolean;
  IsFinal: boolean;
  PartialUploads: string[] | null;
  /**
   * Where the bytes are; null before the upload exists (pre-create) and after it is gone (post-terminate).
   * With the S3 store (S3_BUCKET) as tusd's s3store says it, Path being the object's s3://bucket/key.
   */
  Storage:
    | { Type: 'filestore'; Path: string; InfoPath: string }
    | { Type: 's3store'; Bucket: string; Key: string; Path: string }
    | null;
  /** tuspass's addition: digests of the bytes received so far (of the whole file on *-finish). */
  Digests?: Digests;
  /**
   * tuspass's addition: the subject that created the upload ('' when created anonymously). Set on pre-access,
   * pre-finish and post-finish.
   */
  Owner?: string;
}

/**
 * tuspass's addition: the caller of the request, verified from its bearer token (server/auth/), so a
 * hook can decide per user without seeing the token (the Authorization header is not forwarded).
 * null when the server runs without authentication, or the event comes from no request (a
 * completion handled again after a restart).
 */
export interface HookAuth {
  /** The token's `sub`. */
  Subject: string;
  /** The token's scopes tuspass knows: upload, read, admin. */
  Scopes: string[];
  /** The token's `max_size` in bytes, when it has one. */
  MaxSize?: number;
}

export interface HookHTTPRequest {
  Method: string;
  URI: string;
  RemoteAddr: string;
  Header: Record<string, string[]>;
}

/**
 * pre-access only: what the request does to the upload, named as tusd's proposed pre-access names it.
 * `read`: HEAD, GET, a download of its record's file, a final upload reading it as a partial (with
 * KEEP_PARTIALS; otherwise the final removes its partials: `write`). `write`: PATCH, DELETE, a
 * resumable segment, the removal of its record.
 */
export interface HookAccess {
  Mode: 'read' | 'write';
}

/** The payload every hook gets (tusd: hooks.HookRequest). */
export interface HookRequest {
  Type: HookEventType;
  Event: { Upload: HookUpload; HTTPRequest: HookHTTPRequest; Auth?: HookAuth | null; Access?: HookAccess };
}

export interface HookHTTPResponse {
  StatusCode?: number;
  Body?: string;
  Header?: Record<string, string>;
}

/** The answer a hook may give (tusd: hooks.HookResponse). Every field is optional; `{}` lets things go on. */
export interface HookResponse {
  /**
   * Status, body and headers for the client's response (pre-create, pre-access, pre-finish, pre-terminate,
   * post-receive).
   */
  HTTPResponse?: HookHTTPResponse;
  /** pre-create / pre-finish: refuse the upload (pre-finish: the upload is removed). */
  RejectUpload?: boolean;
  /** pre-terminate: refuse the termination. */
  RejectTermination?: boolean;
  /** pre-access: refuse the request (403 ERR_ACCESS_DENIED unless HTTPResponse says otherwise). */
  RejectAccess?: boolean;
  /** pre-create: change the upload's id or metadata before it is created. */
  ChangeFileInfo?: { ID?: string; MetaData?: Record<string, string> };
  /** post-receive: stop the upload. */
  StopUpload?: boolean;
}

/** What a transport gets besides the payload. */
export interface InvokeContext {
  /** Aborted when the hook timeout passes: a transport stops its work (kills the process, drops the request). */
  signal: AbortSignal;
  /** Set on notices (post-*): the same on every retry of one notice, for the receiver to drop duplicates. */
  noticeId?: string;
}

/** A hook handler, shaped like tusd's: set up once, then invoked with one request per event. */
export interface HookHandler {
  /** Stable across restarts: queued notices find their handler by this name. */
  readonly name: string;
  /** The events this handler wants; others never reach it. */
  readonly events: readonly HookEventType[];
  /** Overrides the runner's timeout for this handler (ms), e.g. when it has its own, longer one. */
  readonly timeoutMs?: number;
  setup?(): Promise<void>;
  invokeHook(request: HookRequest, context?: InvokeContext): Promise<HookResponse>;
  close?(): Promise<void>;
}
