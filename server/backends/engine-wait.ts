// At start, an engine (Redis, PostgreSQL) that does not answer yet is waited for: tried again with
// back-off until STARTUP_TIMEOUT, each try logged, then exit 69 (EX_UNAVAILABLE). Containers start
// in any order, and an engine being restarted is away for seconds: neither is a wrong setting. A
// setting that is wrong (a URL that does not parse, a password refused, a database that does not
// exist) is a ConfigError at once: exit 78, as every other wrong setting.
import type { Log } from '../../core/logger.ts';
import { ConfigError } from '../config/config.ts';

/** An engine that did not answer within STARTUP_TIMEOUT: exit 69. */
export class EngineUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

/** sysexits.h: EX_UNAVAILABLE, "a service is unavailable"; EX_CONFIG is ConfigError's 78. */
export const EXIT_UNAVAILABLE = 69;

export interface StartupWait {
  /** When waiting ends (ms since the epoch): the start + STARTUP_TIMEOUT, shared by every engine. */
  until: number;
  log: Log;
}

/** The waits between tries, in ms: 0.5 s doubling to 5 s. */
const FIRST_WAIT_MS = 500;
const LONGEST_WAIT_MS = 5000;

/**
 * Runs `connect` until it succeeds. It throws a ConfigError for a wrong setting (passed on at once);
 * any other failure is the engine not answering yet, tried again while time is left.
 */
export async function waitForEngine<T>(
  engine: { name: string; setting: string },
  connect: () => Promise<T>,
  wait: StartupWait,
): Promise<T> {
  for (let attempt = 1, delay = FIRST_WAIT_MS; ; attempt++, delay = Math.min(delay * 2, LONGEST_WAIT_MS)) {
    try {
      const connected = await connect();
      if (attempt > 1)
        wait.log(`startup: ${engine.name} answers (try ${attempt})`, {
          event: 'startup.engine',
          engine: engine.name,
          attempt,
        });
      return connected;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      const left = wait.until - Date.now();
      const why = (e as Error).message;
      if (left <= 0) {
        throw new EngineUnavailableError(
          `${engine.setting}: ${engine.name} did not answer within STARTUP_TIMEOUT (${attempt} tries; the last: ` +
            `${why})`,
        );
      }
      const next = Math.min(delay, left);
      wait.log(
        `startup: ${engine.name} (${engine.setting}) does not answer yet (${why}); try ${attempt} failed, the ` +
          `next in ${next} ms (STARTUP_TIMEOUT ends in ${Math.ceil(left / 1000)} s)`,
        {
          event: 'startup.waiting',
          level: 'warn',
          engine: engine.name,
          attempt,
          retry_in_ms: next,
        },
      );
      await new Promise((resolve) => setTimeout(resolve, next));
    }
  }
}
