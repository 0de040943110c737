// Command hooks, as tusd's file hooks: for an event, run the executable named after it in the hooks
// directory, the JSON payload on stdin; exit 0 and stdout (JSON, may be empty) is the answer, any
// other exit is a failure. A missing file means "no hook for this event" (looked up on every event,
// so a hook added while tuspass runs is picked up). On timeout the whole process group is killed, so a
// shell script's children (a `sleep`, a `curl`) die with it.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { hookFailureIn, parseHookAnswer } from '../answer.ts';
import type { HookEventType, HookHandler, HookRequest, HookResponse, InvokeContext } from '../types.ts';

export interface CommandHookOptions {
  dir: string;
  events: readonly HookEventType[];
  log: (line: string) => void;
}

/** Largest stdout read from a hook: an answer is small; more means the hook prints something else. */
const MAX_OUTPUT = 1024 * 1024;

export function createCommandHook(options: CommandHookOptions): HookHandler {
  const dir = path.resolve(options.dir);
  return {
    name: 'command',
    events: options.events,
    async setup() {
      const stat = await fs.stat(dir).catch(() => undefined);
      if (!stat?.isDirectory()) throw new Error(`HOOKS_DIR: ${dir} is not a directory`);
    },
    async invokeHook(request, context) {
      const file = path.join(dir, request.Type);
      try {
        await fs.access(file, fs.constants.X_OK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw new Error(`${file} is not executable`);
      }
      return run(file, request, context, options.log);
    },
  };
}

function run(
  file: string,
  request: HookRequest,
  context: InvokeContext | undefined,
  log: (line: string) => void,
): Promise<HookResponse> {
  const upload = request.Event.Upload;
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], {
      cwd: path.dirname(file),
      // detached: the hook leads its own process group, so a timeout can kill everything it started.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        // tusd's variables; TUS_ID is empty in pre-create there, ours carries the id the upload will get.
        TUS_ID: upload.ID,
        TUS_OFFSET: String(upload.Offset),
        TUS_SIZE: String(upload.Size),
        HOOK_NOTICE_ID: context?.noticeId ?? '',
      },
    });
    // Errors become the client's answer (runner.ts): the hook is named by its setting, not its path here.
    const shown = `HOOKS_DIR/${request.Type}`;
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (error: Error | undefined, answer?: HookResponse) => {
      if (settled) return;
      settled = true;
      context?.signal.removeEventListener('abort', onAbort);
      if (stderr.trim()) log(`hook ${request.Type} (${file}) stderr: ${stderr.trim()}`);
      if (error) reject(error);
      else resolve(answer!);
    };
    const onAbort = () => {
      killGroup(child.pid);
      finish(new Error(`${shown} killed: timed out`));
    };
    if (context?.signal.aborted) return onAbort();
    context?.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.length > MAX_OUTPUT) {
        killGroup(child.pid);
        finish(new Error(`${shown} printed more than ${MAX_OUTPUT} bytes`));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    child.on('error', (e) =>
      finish(new Error(`${shown} could not run: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)),
    );
    child.on('close', (code, signal) => {
      if (code !== 0) return finish(new Error(`${shown} exited with ${signal ?? `code ${code}`}`));
      try {
        finish(undefined, parseHookAnswer(stdout));
      } catch (e) {
        finish(hookFailureIn(shown, e));
      }
    });
    // A hook that does not read its stdin must not fail the event: EPIPE is ignored.
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(request));
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
