// Raw tus 1.0.0 requests (no client library) for protocol tests.
import { request } from 'undici';

export const TUS = { 'Tus-Resumable': '1.0.0' };
export const PATCH_TYPE = { 'Content-Type': 'application/offset+octet-stream' };

export const b64 = (s: string) => Buffer.from(s).toString('base64');
export const metadata = (m: Record<string, string>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');

export interface TusAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export async function tus(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<TusAnswer> {
  const res = await request(url, { method: method as 'POST', headers: { ...TUS, ...headers }, body });
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return { status: res.statusCode, headers: flat, body: await res.body.text() };
}

/** Creates an upload and returns its absolute URL. */
export async function create(endpoint: string, length: number, meta: Record<string, string> = {}): Promise<string> {
  const res = await tus('POST', endpoint, {
    'Upload-Length': String(length),
    ...(Object.keys(meta).length ? { 'Upload-Metadata': metadata(meta) } : {}),
  });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.body}`);
  return new URL(res.headers.location!, endpoint).toString();
}

export const patch = (url: string, offset: number, body: Buffer | string, headers: Record<string, string> = {}) =>
  tus('PATCH', url, { ...PATCH_TYPE, 'Upload-Offset': String(offset), ...headers }, body);
