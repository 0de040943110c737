// Runs the completion service on its own port (`tuspass completion-server`), with the SQLite catalog.
import { createHttpServer } from '../network-timeout.ts';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from '../config.ts';
import { createCompletionApp, type CompletionAppOptions } from './app.ts';
import { openCatalog } from './sqlite-catalog.ts';

export interface RunningCompletionServer {
  /** Base URL, e.g. http://127.0.0.1:1081 (the form goes to `${url}/complete/`). */
  url: string;
  close(): Promise<void>;
}

export async function startCompletionServer(config: Config, options: CompletionAppOptions = {}): Promise<RunningCompletionServer> {
  const catalog = openCatalog(config.catalogPath);
  // The same NETWORK_TIMEOUT as the upload server: a form that stops arriving is cut.
  const server = createHttpServer(createCompletionApp(config, catalog, options), config.networkTimeoutMs, options.log ?? ((line: string) => console.error(line)));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.completionPort, config.host, () => resolve());
    });
  } catch (e) {
    await catalog.close();
    throw new ConfigError([`HOST/COMPLETION_PORT: cannot listen on ${config.host}:${config.completionPort}: ${(e as Error).message}`]);
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host}:${port}`,
    async close() {
      // Idle keep-alive connections would hold close() open until they time out.
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      server.closeAllConnections();
      await closed;
      await catalog.close();
    },
  };
}
