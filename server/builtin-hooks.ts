// The hooks tuspass ships, registered by name for HOOKS_BUILTIN (the names are the configuration's,
// config.ts BUILTIN_HOOKS). The hook layer loads them as module hooks but never imports them: the
// server hands it the factories (as tusd's command line builds and registers its hooks), so hooks/
// knows the hook contract only.
import type { HookModuleFactory } from '../hooks/transports/module.ts';
import type { PostTarget } from './complete-form/post.ts';
import type { BUILTIN_HOOKS } from './config.ts';

export interface BuiltinHookSettings {
  /** Where completion forms go (the url is final once the server listens). */
  target: PostTarget;
  /** PASS_FIELDS. */
  passFields: RegExp;
}

/** The built-in hooks' factories by name; each is imported when it is loaded. */
export function builtinHooks(settings: BuiltinHookSettings): Record<(typeof BUILTIN_HOOKS)[number], HookModuleFactory> {
  return {
    'complete-form': async (context) => (await import('./complete-form/hook.ts')).completeFormModule(context, settings),
  };
}
