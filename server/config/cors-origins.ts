// CORS_ORIGINS: which other origins' pages may call tuspass from a browser. Parsed here (no express),
// so the configuration can check it at start; server/http/cors.ts applies it to requests.
import { parseList } from '../../core/parse.ts';

/** `*` alone, or origins as browsers send them in `Origin`: scheme://host[:port], nothing after. */
export function parseOrigins(raw: string): string[] {
  const items = parseList(raw);
  if (items.includes('*')) {
    if (items.length > 1) throw new Error('is either * alone or a list of origins, not both');
    return ['*'];
  }
  const origins: string[] = [];
  for (const item of items) {
    let u: URL;
    try {
      u = new URL(item);
    } catch {
      throw new Error(`"${item}" is not an origin like https://app.example.com`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`"${item}" must be http or https`);
    // An origin has no path, query or credentials: a browser's Origin header never carries them, so
    // an entry with them would never match (and probably means a mistake).
    if (`${u.origin}/` !== u.href) {
      throw new Error(`"${item}" is not an origin (scheme://host[:port], no path): did you mean ${u.origin}?`);
    }
    origins.push(u.origin);
  }
  return [...new Set(origins)];
}
