// Builds the hook handlers the configuration asks for, in the order blocking events run them: the
// user's hooks first (module, command, HTTP), so a validation hook can refuse an upload before the
// built-in complete-form posts its completion form; then the built-ins, whose answer (the app's
// response) reaches the client last and so wins the merge.
import { createCommandHook } from './transports/command.ts';
import { createHttpHook } from './transports/http.ts';
import { loadModuleHook, type HookModuleContext } from './transports/module.ts';
import type { HookEventType, HookHandler } from './types.ts';

/** The hook settings (the server's configuration satisfies this; HOOKS_* in the README). */
export interface HookSettings {
  hooksModules: readonly string[];
  hooksDir?: string;
  hooksDirEvents?: readonly HookEventType[];
  hooksEnabledEvents: readonly HookEventType[];
  hooksHttp?: string;
  hooksHttpEvents?: readonly HookEventType[];
  hooksHttpRetry: number;
  hooksHttpBackoffMs: number;
  hooksHttpForwardHeaders: readonly string[];
  /** Names of built-in hooks to load, each made by `LoadOptions.builtins`. */
  hooksBuiltin: readonly string[];
}

export interface LoadOptions {
  /** Key that signs HTTP hook requests (the completion secret). */
  secret: string;
  /**
   * The built-in hooks by name, registered by the server (the hook layer knows none of them); those
   * named in `hooksBuiltin` are loaded. None given: no built-ins (`tuspass hooks test` checks the
   * user's hooks only).
   */
  builtins?: Readonly<Record<string, () => Promise<HookHandler>>>;
  /** Handlers given in code (embedding, tests): they run after the configured ones, before the built-ins. */
  extra?: readonly HookHandler[];
}

export async function loadHookHandlers(
  config: HookSettings,
  context: HookModuleContext,
  options: LoadOptions,
): Promise<HookHandler[]> {
  const handlers: HookHandler[] = [];
  for (const spec of config.hooksModules) handlers.push(await loadModuleHook(spec, context));
  if (config.hooksDir) {
    handlers.push(
      createCommandHook({
        dir: config.hooksDir,
        events: config.hooksDirEvents ?? config.hooksEnabledEvents,
        log: context.log,
      }),
    );
  }
  if (config.hooksHttp) {
    handlers.push(
      createHttpHook({
        url: config.hooksHttp,
        events: config.hooksHttpEvents ?? config.hooksEnabledEvents,
        secret: options.secret,
        retry: config.hooksHttpRetry,
        backoffMs: config.hooksHttpBackoffMs,
        forwardHeaders: config.hooksHttpForwardHeaders,
      }),
    );
  }
  handlers.push(...(options.extra ?? []));
  if (options.builtins) {
    for (const name of config.hooksBuiltin) {
      const factory = options.builtins[name];
      if (!factory)
        throw new Error(
          `HOOKS_BUILTIN: no built-in hook "${name}"; known: ${Object.keys(options.builtins).join(', ')}`,
        );
      handlers.push(await factory());
    }
  }
  return handlers;
}

/** One line per handler for the start-up log: which hooks run on which events. */
export function describeHandlers(handlers: readonly HookHandler[]): string[] {
  return handlers.map((h) => `hooks: ${h.name} on ${h.events.join(', ')}`);
}
