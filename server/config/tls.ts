// TLS_CERT and TLS_KEY (tusd's -tls-certificate / -tls-key): tus, the page and the API over HTTPS.
// Read and checked once at start, so a wrong file is a start-up error naming its setting (exit 78),
// never a failed handshake at the first client.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type https from 'node:https';
import { ConfigError, type Config } from './config.ts';

/** TLS 1.2 or newer: older versions have known weaknesses (RFC 8996 deprecates 1.0 and 1.1). */
export const TLS_MIN_VERSION = 'TLSv1.2';

function read(file: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new ConfigError([
      `${setting}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    ]);
  }
}

/** The server options for HTTPS, or undefined when TLS is not configured. Throws ConfigError naming the setting. */
export function tlsServerOptions(config: Config): https.ServerOptions | undefined {
  if (!config.tlsCert || !config.tlsKey) return undefined;
  const cert = read(config.tlsCert, 'TLS_CERT');
  const key = read(config.tlsKey, 'TLS_KEY');
  let certificate: crypto.X509Certificate;
  let privateKey: crypto.KeyObject;
  try {
    certificate = new crypto.X509Certificate(cert);
  } catch (e) {
    throw new ConfigError([`TLS_CERT: ${config.tlsCert} is not a PEM certificate (${(e as Error).message})`]);
  }
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (e) {
    throw new ConfigError([
      `TLS_KEY: ${config.tlsKey} is not a PEM private key without a passphrase (${(e as Error).message})`,
    ]);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError([
      `TLS_KEY: the key in ${config.tlsKey} does not belong to the certificate in TLS_CERT (${config.tlsCert})`,
    ]);
  }
  return { cert, key, minVersion: TLS_MIN_VERSION };
}
