// How a server process stops: the first SIGTERM or SIGINT starts a graceful stop (SHUTDOWN_TIMEOUT,
// see network-timeout.ts stopServer); a second one, while that runs, exits at once — an operator
// pressing Ctrl-C twice, or an orchestrator that gave up waiting, is not kept waiting.
import os from 'node:os';

/** Resolves with the first stop signal; a second one exits the process at once with 128 + its number. */
export function firstStopSignal(name: string): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const on = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`tuspass ${name}: second ${signal}, exiting now\n`);
        process.exit(128 + (os.constants.signals[signal] ?? 0));
      }
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
