// Listening on a configured address, with a failure that names the setting to change: a busy port is
// the most common start-up problem, and "EADDRINUSE" alone does not say which of PORT,
// COMPLETION_PORT or METRICS_PORT it was, nor what to do.
import type { Server } from 'node:net';
import { ConfigError, SETTINGS } from '../config/config.ts';

export type PortSetting = 'PORT' | 'COMPLETION_PORT' | 'METRICS_PORT';

/** `PORT (--port)`: the variable and its flag, as the README's table names them. */
const named = (env: string) => {
  const flag = SETTINGS.find((s) => s.env === env)?.flag;
  return flag ? `${env} (${flag})` : env;
};

/** Why listening failed, in words naming the setting to change; exported for tests. */
export function listenProblem(
  e: NodeJS.ErrnoException,
  host: string,
  port: number,
  setting: PortSetting,
  hostSetting = 'HOST',
): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return (
        `${setting}: port ${port} is already in use on ${host} (EADDRINUSE): set ${named(setting)} to a free port, ` +
        'or stop the program using it'
      );
    case 'EACCES':
      return (
        `${setting}: not allowed to listen on ${where} (EACCES): ports below 1024 need privileges; set ` +
        `${named(setting)} to 1024 or above`
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return (
        `${hostSetting}: ${host} is not an address of this machine (${e.code}): set ${named(hostSetting)} to one of ` +
        'its addresses, 127.0.0.1 or 0.0.0.0'
      );
    default:
      return `${hostSetting}/${setting}: cannot listen on ${where}: ${e.message}`;
  }
}

/** Listens, or throws a ConfigError (exit 78) naming the setting to change. */
export function listenOn(
  server: Server,
  port: number,
  host: string,
  setting: PortSetting,
  hostSetting = 'HOST',
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) =>
      reject(new ConfigError([listenProblem(e, host, port, setting, hostSetting)]));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}
