// Module hooks: a TypeScript or JavaScript module with one function per event, run in-process (tsx
// loads .ts files as they are). The module is the opt-in: it gets exactly the events it exports.
// Accepted shapes, so a hook stays a few lines:
//   export const preCreate: HookFunction = (req) => ...          (named, camelCase event names)
//   export default defineHooks({ 'pre-create': (req) => ... })   (an object keyed by event name)
//   export default defineHooks((ctx) => ({ ... }))               (a factory, for hooks needing setup)
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkHookAnswer } from '../answer.ts';
import type { Notices } from '../notices.ts';
import {
  HOOK_EVENTS,
  isHookEvent,
  type HookEventType,
  type HookHandler,
  type HookRequest,
  type HookResponse,
  type InvokeContext,
} from '../types.ts';

// biome-ignore lint/suspicious/noConfusingVoidType: a hook function with no return statement returns void
type HookResult = HookResponse | void;
/** One event's hook in a module. Returning nothing means `{}`: go on unchanged. */
export type HookFunction = (request: HookRequest, context: InvokeContext) => HookResult | Promise<HookResult>;

export type HookModule = { [E in HookEventType]?: HookFunction } & {
  /** This module's timeout in ms when it must differ from HOOKS_TIMEOUT. */
  timeoutMs?: number;
  close?(): void | Promise<void>;
};

/**
 * What a factory module gets at start: the hook contract's services, never the server's own
 * configuration (a module reads its own settings, e.g. from the environment).
 */
export interface HookModuleContext {
  log(line: string): void;
  /** The durable queue, for modules that deliver something elsewhere and must not lose it. */
  queue: Notices;
  removeUpload(id: string): Promise<void>;
}

export type HookModuleFactory = (context: HookModuleContext) => HookModule | Promise<HookModule>;

/** Types a module's default export; returns it unchanged. */
export function defineHooks<T extends HookModule | HookModuleFactory>(hooks: T): T {
  return hooks;
}

const camel = (event: string) => event.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

/** Loads the module hook at `spec` (a file). */
export async function loadModuleHook(spec: string, context: HookModuleContext): Promise<HookHandler> {
  const exports = await importFile(spec);
  const hooks = await hookModuleOf(spec, exports, context);
  const events = HOOK_EVENTS.filter((e) => typeof hooks[e] === 'function');
  if (!events.length)
    throw new Error(
      `HOOKS_MODULE: ${spec} exports no hook; expected one of ${HOOK_EVENTS.join(', ')} (or ` +
        `${HOOK_EVENTS.map(camel).join(', ')})`,
    );
  return {
    name: `module:${spec}`,
    events,
    timeoutMs: hooks.timeoutMs,
    async invokeHook(request, invoke) {
      const answer = await hooks[request.Type]!(request, invoke ?? { signal: new AbortController().signal });
      // Checked as a command's or HTTP hook's answer is (answer.ts): a header that cannot be sent is
      // the hook's failure, not one smuggled into the client's answer.
      return checkHookAnswer(answer ?? {});
    },
    async close() {
      await hooks.close?.();
    },
  };
}

/**
 * The server runs as plain JavaScript (bin/bundle.js), so a TypeScript hook module needs tsx's
 * loader, loaded only then (it costs memory for the life of the process). tsImport, not a global
 * register(): outside a `"type": "module"` package a `.ts` file counts as CommonJS, and with only the
 * ESM loader registered node requires it as an ES module — "Cannot require() ES Module … in a cycle".
 * tsImport loads the module and what it imports with tsx's ESM and CommonJS loaders both, wherever
 * the file sits.
 */
const TYPESCRIPT = /\.[cm]?tsx?$/;

async function importFile(spec: string): Promise<Record<string, unknown>> {
  const file = path.resolve(spec);
  const url = pathToFileURL(file).href;
  try {
    if (TYPESCRIPT.test(file))
      return moduleExports(
        (await (await import('tsx/esm/api')).tsImport(url, import.meta.url)) as Record<string, unknown>,
      );
    return moduleExports((await import(url)) as Record<string, unknown>);
  } catch (e) {
    throw new Error(`HOOKS_MODULE: cannot load ${file}: ${(e as Error).message}`);
  }
}

/**
 * The module's own exports. A module compiled to CommonJS (a `.ts` file outside a `"type": "module"`
 * package, or a `.js` one built that way) reaches import() as `{ default: module.exports }`, its
 * exports marked `__esModule`: those are the ones the author wrote.
 */
function moduleExports(namespace: Record<string, unknown>): Record<string, unknown> {
  const inner = namespace.default as { __esModule?: unknown } | null | undefined;
  return typeof inner === 'object' && inner !== null && inner.__esModule === true
    ? (inner as Record<string, unknown>)
    : namespace;
}

async function hookModuleOf(
  spec: string,
  exports: Record<string, unknown>,
  context: HookModuleContext,
): Promise<HookModule> {
  let hooks: Record<string, unknown>;
  if (typeof exports.default === 'function')
    hooks = (await (exports.default as HookModuleFactory)(context)) as Record<string, unknown>;
  else if (typeof exports.default === 'object' && exports.default !== null)
    hooks = exports.default as Record<string, unknown>;
  else
    hooks = Object.fromEntries(
      HOOK_EVENTS.filter((e) => typeof exports[camel(e)] === 'function').map((e) => [e, exports[camel(e)]]),
    );
  // A misspelt event would otherwise be silently never called.
  for (const key of Object.keys(hooks)) {
    if (/^(pre|post)-/.test(key) && !isHookEvent(key))
      throw new Error(`HOOKS_MODULE: ${spec} exports unknown hook event "${key}"; known: ${HOOK_EVENTS.join(', ')}`);
  }
  return hooks as HookModule;
}
