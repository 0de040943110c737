// The hook contract. Payload and answer follow tusd v2's hook format field for field, so that a hook
// written for tusd runs on tuspass unchanged; tuspass adds `Digests` to the upload.

/** tusd's event names. `pre-*` events block the request and may reject it; `post-*` events are notices. */
export const HOOK_EVENTS = ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish', 'pre-terminate', 'post-terminate'] as const;
export type HookEventType = (typeof HOOK_EVENTS)[number];

export const isBlocking = (type: HookEventType): boolean => type.startsWith('pre-');

export interface HookUpload {
  ID: string;
  Size: number;
  SizeIsDeferred: boolean;
  Offset: number;
  MetaData: Record<string, string>;
  IsPartial: boolean;
  IsFinal: boolean;
  PartialUploads: string[] | null;
  Storage: { Type: 'filestore'; Path: string; InfoPath: string } | null;
  /** tuspass's addition: digests of the bytes received so far (of the whole file on *-finish). */
  Digests?: { md5: string; sha1?: string; crc32?: string; size: number };
}

export interface HookHTTPRequest {
  Method: string;
  URI: string;
  RemoteAddr: string;
  Header: Record<string, string[]>;
}

export interface HookRequest {
  Type: HookEventType;
  Event: { Upload: HookUpload; HTTPRequest: HookHTTPRequest };
}

export interface HookHTTPResponse {
  StatusCode?: number;
  Body?: string;
  Header?: Record<string, string>;
}

export interface HookResponse {
  HTTPResponse?: HookHTTPResponse;
  /** pre-create / pre-finish: refuse the upload (pre-finish: the upload is removed). */
  RejectUpload?: boolean;
  /** pre-terminate: refuse the termination. */
  RejectTermination?: boolean;
  /** pre-create: change the upload's id or metadata before it is created. */
  ChangeFileInfo?: { ID?: string; MetaData?: Record<string, string> };
  /** post-receive: stop the upload. */
  StopUpload?: boolean;
}

/** A hook handler, shaped like tusd's: set up once, then invoked with one request per event. */
export interface HookHandler {
  readonly name: string;
  /** The events this handler wants; others never reach it. */
  readonly events: readonly HookEventType[];
  setup?(): Promise<void>;
  invokeHook(request: HookRequest): Promise<HookResponse>;
  close?(): Promise<void>;
}
