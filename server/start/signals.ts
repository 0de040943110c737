// How a server process stops: the first SIGTERM or SIGINT starts a graceful stop (SHUTDOWN_TIMEOUT,
// see network-timeout.ts stopServer); a second one, while that runs, exits at once — an operator
// pressing Ctrl-C twice, or an orchestrator that gave up waiting, is not kept waiting.
//
// Run by npm (`npx tuspass start`, a script in an app's package.json), the server's parent is the
// shell npm runs the command in (`sh -c`). npm hands a SIGTERM on to that shell, and the shell dies
// without passing it on: the server would be left running, orphaned and listening. So under npm, the
// parent going away stops the server as a SIGTERM would. (`npm start` here runs `exec node …`: the
// shell becomes the server, and npm's SIGTERM reaches it directly.)
import os from 'node:os';

/** How often a server run by npm looks whether its parent is still there. */
const PARENT_CHECK_MS = 1000;

/** Calls `gone` once the parent process has gone (the process was handed to another parent). */
function watchParent(gone: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    gone();
  }, PARENT_CHECK_MS);
  timer.unref();
}

/**
 * Resolves with what asked the process to stop: the first stop signal, or (run by npm) its parent's
 * going away. A second signal exits the process at once with 128 + its number, said through `say`.
 */
export function firstStopSignal(
  name: string,
  say: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string> {
  return new Promise((resolve) => {
    let stopping = false;
    const on = (signal: NodeJS.Signals) => {
      if (stopping) {
        say(`tuspass ${name}: second ${signal}, exiting now`);
        process.exit(128 + (os.constants.signals[signal] ?? 0));
      }
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    // npm names the script it runs in every child's environment (npx: "npx").
    if (process.env.npm_lifecycle_event) {
      watchParent(() => {
        if (stopping) return;
        stopping = true;
        resolve('the npm process that ran it is gone');
      });
    }
  });
}
