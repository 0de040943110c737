// `tuspass token --sub NAME --scope "upload read" [--ttl 24h] [--max-size 10GiB]`: prints a bearer
// token signed with the configured AUTH_JWT_SECRET (HS256) — for trying things out, scripts and
// admins. Apps mint the same token with their own JWT library (README, "Authentication").
import { parsePositiveDuration, parseSize } from '../../core/parse.ts';
import { ConfigError, load, unknownArgument } from '../config/config.ts';
import { SCOPES } from './verify.ts';

const USAGE = `usage: tuspass token --sub NAME --scope "upload read" [--ttl 24h] [--max-size 10GiB]

Prints a bearer token signed with AUTH_JWT_SECRET (or AUTH_JWT_SECRET_FILE), HS256.
  --sub NAME        the owner of what the token's holder uploads (the sub claim)
  --scope "..."     space-separated: upload, read, admin
  --ttl DURATION    lifetime, e.g. 15m, 24h, 30d (default 24h)
  --max-size SIZE   largest upload the token allows, e.g. 10GiB (default: no limit beyond MAX_SIZE)
AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE, when set, become the iss and aud claims.
`;

export async function tokenCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const own = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (['--sub', '--scope', '--ttl', '--max-size'].includes(name)) {
      const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new ConfigError([`${name}: needs a value`]);
      own.set(name, value);
    } else rest.push(arg);
  }
  const { config, rest: unknown } = load(process.env, rest, 'tuspass token --help');
  const problems = unknown.map((a) => unknownArgument(a, 'tuspass token --help'));
  const sub = own.get('--sub');
  if (!sub) problems.push('--sub: the subject (owner) is required');
  const scopes = (own.get('--scope') ?? '').split(/\s+/).filter(Boolean);
  if (!scopes.length) problems.push(`--scope: give one or more of ${SCOPES.join(', ')}`);
  const unknownScopes = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknownScopes.length) problems.push(`--scope: unknown ${unknownScopes.join(', ')}; known: ${SCOPES.join(', ')}`);
  let ttlMs = 86_400_000;
  let maxSize: number | undefined;
  try {
    if (own.has('--ttl')) ttlMs = parsePositiveDuration(own.get('--ttl')!);
  } catch (e) {
    problems.push(`--ttl: ${(e as Error).message}`);
  }
  try {
    if (own.has('--max-size')) maxSize = parseSize(own.get('--max-size')!);
    if (maxSize === 0) problems.push('--max-size: must be at least 1 byte (leave it out for no limit)');
  } catch (e) {
    problems.push(`--max-size: ${(e as Error).message}`);
  }
  if (!config.authJwtSecret) {
    problems.push(
      config.authJwtPublicKey
        ? 'AUTH_JWT_PUBLIC_KEY verifies tokens signed elsewhere: mint them where the private key is (tuspass token ' +
            'signs with AUTH_JWT_SECRET only)'
        : 'AUTH_JWT_SECRET (or AUTH_JWT_SECRET_FILE) is not set: there is no key to sign with',
    );
  }
  if (problems.length) throw new ConfigError(problems);

  // Imported here, not at the top: the server's bundle holds this command too, and would load jose at every start.
  const { SignJWT } = await import('jose');
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ scope: scopes.join(' '), ...(maxSize !== undefined && { max_size: maxSize }) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub!)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(ttlMs / 1000));
  if (config.authJwtIssuer) jwt.setIssuer(config.authJwtIssuer);
  if (config.authJwtAudience) jwt.setAudience(config.authJwtAudience);
  process.stdout.write(`${await jwt.sign(Buffer.from(config.authJwtSecret!, 'utf8'))}\n`);
  return 0;
}
