// The hooks tuspass ships, registered by name for HOOKS_BUILTIN. The hook layer loads them but never
// imports them: the server hands it their factories (as tusd's command line builds and registers its
// hooks), so hooks/ knows the hook contract only.
import { parseList } from '../core/parse.ts';
import type { HookHandler } from '../hooks/types.ts';
import type { CompletionDeliverer } from './complete-form/deliver.ts';

export const BUILTIN_HOOKS = ['complete-form'] as const;

export interface BuiltinHookSettings {
  /** Where every front-end's completion form goes. */
  deliverer: CompletionDeliverer;
  /** PASS_FIELDS. */
  passFields: RegExp;
  /** COMPLETION_TIMEOUT, in ms. */
  completionTimeoutMs: number;
  log: (line: string) => void;
}

/** The built-in hooks' factories by name; each is imported when it is loaded. */
export function builtinHooks(settings: BuiltinHookSettings): Record<(typeof BUILTIN_HOOKS)[number], () => Promise<HookHandler>> {
  return {
    'complete-form': async () => (await import('./complete-form/hook.ts')).createCompleteFormHook(settings.deliverer, { passFields: settings.passFields, log: settings.log }, settings.completionTimeoutMs),
  };
}

/** HOOKS_BUILTIN: built-in hook names; `none` turns them all off. */
export function parseBuiltins(raw: string): string[] {
  const names = parseList(raw);
  if (names.length === 1 && names[0] === 'none') return [];
  const unknown = names.filter((n) => !(BUILTIN_HOOKS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`unknown built-in hook ${unknown.join(', ')}; known: ${BUILTIN_HOOKS.join(', ')}, or none`);
  // Each once: a name given twice would load the hook twice (complete-form posting every form twice).
  return [...new Set(names)];
}
