// tus-js-client for `tuspass push`, loaded the first time push asks for it. The server bundle holds
// push too, and a module imported at its top would load with every server: 4 MB resident that
// `tuspass start` never uses. (A require through createRequire: the bundler leaves it a call.)
import { createRequire } from 'node:module';
import type * as TusClient from 'tus-js-client';

let loaded: typeof TusClient | undefined;

export function tusClient(): typeof TusClient {
  loaded ??= createRequire(import.meta.url)('tus-js-client') as typeof TusClient;
  return loaded;
}
