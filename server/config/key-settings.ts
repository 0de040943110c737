// Parsing of the AUTH_JWT_* settings: each reads and checks its key material once, at start, so a
// wrong file or PEM is a start-up error naming the setting (config.ts collects them, exit 78).
import crypto from 'node:crypto';
import fs from 'node:fs';

/** HS256 keys at least as long as the hash (RFC 7518 §3.2: "A key of the same size as the hash output ... or larger
 * MUST be used"). */
const MIN_SECRET = 32;

export type PublicKeyAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

export interface JwtPublicKey {
  /** The PEM file as configured (for messages). */
  file: string;
  /** The public key in SPKI PEM form. */
  pem: string;
  /** The one algorithm tokens signed with this key may name (no algorithm confusion). */
  algorithm: PublicKeyAlgorithm;
}

export function parseJwtSecret(raw: string): string {
  if (Buffer.byteLength(raw) < MIN_SECRET)
    throw new Error(`must be at least ${MIN_SECRET} bytes (HS256 keys as long as the hash), e.g. openssl rand -hex 32`);
  return raw;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** AUTH_JWT_SECRET_FILE: the secret is the file's content without its trailing newline. */
export function readJwtSecretFile(file: string): string {
  return parseJwtSecret(readText(file).replace(/\r?\n$/, ''));
}

/** AUTH_JWT_PUBLIC_KEY: a PEM file holding an RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA) public key. */
export function readJwtPublicKey(file: string): JwtPublicKey {
  const text = readText(file);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(text);
  } catch (e) {
    throw new Error(`${file} is not a PEM public key (${(e as Error).message})`);
  }
  if (/PRIVATE KEY/.test(text))
    throw new Error(`${file} holds a private key; give tuspass the public key only (openssl pkey -pubout)`);
  const type = key.asymmetricKeyType;
  let algorithm: PublicKeyAlgorithm;
  if (type === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new Error(`${file}: RSA keys must have at least 2048 bits`);
    algorithm = 'RS256';
  } else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = 'ES256';
  else if (type === 'ed25519') algorithm = 'EdDSA';
  else
    throw new Error(
      `${file}: a ${type}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''} ` +
        'key; tuspass verifies RSA (RS256), EC P-256 (ES256) and Ed25519 (EdDSA)',
    );
  return { file, pem: key.export({ type: 'spki', format: 'pem' }).toString(), algorithm };
}
