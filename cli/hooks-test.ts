// `tuspass hooks test EVENT`: sends a sample payload for EVENT to each configured hook that takes it
// (module, command, HTTP — not the built-in complete-form unless asked, so nothing reaches the app's
// catalog), and prints each hook's answer or failure. Exit 0 when every hook answered, 1 otherwise.
import os from 'node:os';
import path from 'node:path';
import { completionUrlOf, ConfigError, load, unknownArgument } from '../server/config/config.ts';
import { completionSecret } from '../server/config/secret.ts';
import { builtinHooks } from '../server/start/builtin-hooks.ts';
import { loadHookHandlers } from '../hooks/load-handlers.ts';
import { NoticeQueue } from '../hooks/queue.ts';
import { invokeWithTimeout } from '../hooks/runner.ts';
import { samplePayload } from '../hooks/sample.ts';
import { errorText } from '../core/logger.ts';
import { HOOK_EVENTS, isBlocking, isHookEvent } from '../hooks/types.ts';

export const HOOKS_USAGE = `usage: tuspass hooks test EVENT [--size BYTES] [--meta KEY=VALUE]... \
[--include-builtin] [options]

Sends a sample ${'`'}EVENT${'`'} payload (one of ${HOOK_EVENTS.join(', ')}) to the configured hooks
(--hooks-dir, --hooks-http, --hooks-module ...) and prints each answer.
`;

export async function hooksCommand(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const [sub, event, ...rest] = args;
  if (sub !== 'test' || !event || event === '--help') {
    process.stdout.write(HOOKS_USAGE);
    return sub === 'test' && event === '--help' ? 0 : 2;
  }
  if (!isHookEvent(event)) throw new ConfigError([`unknown hook event "${event}"; known: ${HOOK_EVENTS.join(', ')}`]);
  const own = {
    size: undefined as number | undefined,
    metadata: undefined as Record<string, string> | undefined,
    builtins: false,
  };
  const configArgs: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--include-builtin') own.builtins = true;
    else if (arg === '--size') own.size = Number(rest[++i]);
    else if (arg === '--meta') {
      const [key, ...value] = (rest[++i] ?? '').split('=');
      (own.metadata ??= {})[key!] = value.join('=');
    } else configArgs.push(arg);
  }
  const { config, rest: unknown } = load(env, configArgs, 'tuspass hooks --help');
  if (unknown.length) throw new ConfigError(unknown.map((a) => unknownArgument(a, 'tuspass hooks --help')));

  const log = (line: string) => process.stderr.write(`${line}\n`);
  // A queue nobody starts, in a scratch directory: what a module queues during a test goes nowhere.
  const queue = new NoticeQueue({
    dir: path.join(os.tmpdir(), `tuspass-hooks-test-${process.pid}`),
    minMs: 1000,
    maxMs: 1000,
    log,
  });
  const secret = completionSecret(config);
  const target = {
    url: completionUrlOf(config),
    secret,
    timeoutMs: config.completionTimeoutMs,
    cleanupStatuses: config.cleanupStatuses,
  };
  const context = {
    log,
    queue,
    removeUpload: async (id: string) => {
      log(`(test: upload ${id} would be removed)`);
    },
  };
  // A hooks directory that is not there or a module that does not load is a configuration problem,
  // said as such (exit 78), as `tuspass start` says it.
  // The deliverer (and the metrics it counts into) is loaded only when the built-ins are tested.
  const deliverer = async () =>
    new (await import('../server/complete-form/deliver.ts')).CompletionDeliverer({
      target,
      queue,
      removeUpload: context.removeUpload,
      log,
    });
  const builtins = own.builtins
    ? builtinHooks({
        deliverer: await deliverer(),
        passFields: config.passFields,
        completionTimeoutMs: config.completionTimeoutMs,
        log,
      })
    : undefined;
  const handlers = await loadHookHandlers(config, context, { secret, builtins }).catch((e: Error) => {
    throw new ConfigError([e.message]);
  });
  const subscribed = handlers.filter((h) => h.events.includes(event));
  if (!subscribed.length) {
    const configured = handlers.map((h) => `${h.name}: ${h.events.join(',')}`).join('; ') || 'no hooks configured';
    process.stderr.write(`tuspass hooks test: no configured hook takes ${event} (${configured})\n`);
    return 1;
  }
  // What `tuspass start` checks at start (a hooks directory that is there, a reachable setup): the same words, before
  // any payload.
  for (const handler of subscribed) {
    await Promise.resolve(handler.setup?.()).catch((e: Error) => {
      throw new ConfigError([e.message]);
    });
  }
  const request = samplePayload(event, { size: own.size, metadata: own.metadata, storeDir: config.storeDir });
  process.stdout.write(`payload:\n${JSON.stringify(request, null, 2)}\n`);
  let failed = 0;
  for (const handler of subscribed) {
    const started = Date.now();
    try {
      const noticeId = isBlocking(event) ? undefined : `test-${request.Event.Upload.ID}`;
      const answer = await invokeWithTimeout(handler, request, handler.timeoutMs ?? config.hooksTimeoutMs, noticeId);
      process.stdout.write(
        `${handler.name}: answered in ${Date.now() - started} ms:\n${JSON.stringify(answer, null, 2)}\n`,
      );
    } catch (e) {
      failed++;
      // With what the hook printed or answered (logDetail): this is its author at the terminal.
      process.stdout.write(`${handler.name}: FAILED after ${Date.now() - started} ms: ${errorText(e)}\n`);
    } finally {
      await handler.close?.();
    }
  }
  return failed ? 1 : 0;
}
