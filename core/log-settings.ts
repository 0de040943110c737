// LOG_FORMAT and LOG_LEVEL's values, apart from the logger so reading the configuration loads no pino.
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The default format: text for a person at a terminal, JSON for whatever collects the output. */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'text' : 'json';
}
