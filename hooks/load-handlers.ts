// Builds the hook handlers the configuration asks for, in the order blocking events run them: the
// user's hooks first (module, command, HTTP), so a validation hook can refuse an upload before the
// built-in complete-form posts its completion form; then the built-ins, whose answer (the app's
// response) reaches the client last and so wins the merge.
import type { Config } from '../server/config.ts';
import { createCommandHook } from './transports/command.ts';
import { createHttpHook } from './transports/http.ts';
import { loadModuleHook, type HookModuleContext } from './transports/module.ts';
import type { HookHandler } from './types.ts';

export interface LoadOptions {
  /** Key that signs HTTP hook requests (the completion secret). */
  secret: string;
  /** Leave out the built-in modules (`tuspass hooks test` checks the user's hooks only). */
  builtins?: boolean;
  /** Handlers given in code (embedding, tests): they run after the configured ones, before the built-ins. */
  extra?: readonly HookHandler[];
}

export async function loadHookHandlers(config: Config, context: HookModuleContext, options: LoadOptions): Promise<HookHandler[]> {
  const handlers: HookHandler[] = [];
  for (const spec of config.hooksModules) handlers.push(await loadModuleHook(spec, context));
  if (config.hooksDir) {
    handlers.push(createCommandHook({ dir: config.hooksDir, events: config.hooksDirEvents ?? config.hooksEnabledEvents, log: context.log }));
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
  if (options.builtins ?? true) for (const name of config.hooksBuiltin) handlers.push(await loadModuleHook(name, context));
  return handlers;
}

/** One line per handler for the start-up log: which hooks run on which events. */
export function describeHandlers(handlers: readonly HookHandler[]): string[] {
  return handlers.map((h) => `hooks: ${h.name} on ${h.events.join(', ')}`);
}
