// What a server command (start, upload-server, completion-server) writes besides its log: where it
// listens and that it stops (stdout), why it could not start or must end (stderr). Plain lines for a
// person; under LOG_FORMAT=json the same as JSON lines, like every log line — a container's log,
// stdout and stderr together, is then JSON from its first line to its last, node's own warnings and
// an uncaught error included.
import { createLog, type LogFields } from '../core/logger.ts';
import type { LogFormat } from '../core/log-settings.ts';

export interface ServerOutput {
  /** JSON lines (else plain text). */
  json: boolean;
  /** A line of what the command does (stdout). Not a log line: LOG_LEVEL does not silence it. */
  say(message: string, fields?: LogFields): void;
  /** The command's last words (stderr): why it did not start, or stops at once. */
  fail(message: string, fields?: LogFields): void;
}

export function serverOutput(format: LogFormat): ServerOutput {
  if (format === 'text') {
    return {
      json: false,
      say: (message) => process.stdout.write(`${message}\n`),
      fail: (message) => process.stderr.write(`${message}\n`),
    };
  }
  const stdout = createLog({ format: 'json', level: 'info', fd: 1 });
  const stderr = createLog({ format: 'json', level: 'info' });
  return {
    json: true,
    say: (message, fields) => stdout(message, fields),
    fail: (message, fields) => stderr(message, { level: 'fatal', ...fields }),
  };
}

/**
 * Under JSON, what node itself would write as text goes out as JSON lines: warnings (node's own
 * listener prints `(node:123) Warning: …`), and an uncaught error's stack before the process ends
 * with 1, as it would have.
 */
export function jsonProcessOutput(command: string): void {
  const stderr = createLog({ format: 'json', level: 'info' });
  process.removeAllListeners('warning');
  process.on('warning', (w) =>
    stderr(`${w.name}: ${w.message}`, { level: 'warn', event: 'process.warning', code: (w as { code?: string }).code }),
  );
  process.on('uncaughtException', (e) => {
    stderr(`tuspass ${command}: uncaught ${e instanceof Error ? e.message : String(e)}`, {
      level: 'fatal',
      event: 'process.crashed',
      stack: e instanceof Error ? e.stack : undefined,
    });
    process.exit(1);
  });
}
