// The hooks tuspass ships, registered by name for HOOKS_BUILTIN (the names are the configuration's,
// config.ts BUILTIN_HOOKS). The hook layer loads them but never imports them: the server hands it
// their factories (as tusd's command line builds and registers its hooks), so hooks/ knows the hook
// contract only.
import type { HookHandler } from '../../hooks/types.ts';
import type { CompletionDeliverer } from '../complete-form/deliver.ts';
import type { BUILTIN_HOOKS } from '../config/config.ts';

export interface BuiltinHookSettings {
  /** Where every front-end's completion form goes. */
  deliverer: CompletionDeliverer;
  /** PASS_FIELDS. */
  passFields: RegExp;
  /** COMPLETION_TIMEOUT, in ms. */
  completionTimeoutMs: number;
  /** The form's `<field>.url` of a finished upload (S3_FORM_URL_TTL: the store's presigned URL), if any. */
  objectUrl?: (id: string) => Promise<string | undefined>;
  log: (line: string) => void;
}

/** The built-in hooks' factories by name; each is imported when it is loaded. */
export function builtinHooks(
  settings: BuiltinHookSettings,
): Record<(typeof BUILTIN_HOOKS)[number], () => Promise<HookHandler>> {
  return {
    'complete-form': async () =>
      (await import('../complete-form/hook.ts')).createCompleteFormHook(
        settings.deliverer,
        { passFields: settings.passFields, log: settings.log },
        settings.completionTimeoutMs,
        settings.objectUrl,
      ),
  };
}
