// What hook authors import: the payload and answer types (tusd v2's format plus tuspass's Digests)
// and the helpers for module hooks. `import { defineHooks, type HookRequest } from 'tuspass/hooks'`.
export {
  HOOK_EVENTS,
  DEFAULT_ENABLED_EVENTS,
  isBlocking,
  type HookEventType,
  type HookUpload,
  type HookHTTPRequest,
  type HookAuth,
  type HookAccess,
  type HookRequest,
  type HookHTTPResponse,
  type HookResponse,
  type HookHandler,
  type InvokeContext,
} from './types.ts';
export {
  defineHooks,
  type HookFunction,
  type HookModule,
  type HookModuleContext,
  type HookModuleFactory,
} from './transports/module.ts';
export { NOTICE_ID_HEADER } from './transports/http.ts';
export {
  SIGNATURE_HEADER,
  SIGNATURE_PURPOSES,
  checkSignature,
  purposeKey,
  verify as verifySignature,
  type SignaturePurpose,
} from '../core/signature.ts';
