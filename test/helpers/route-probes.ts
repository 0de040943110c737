// One request on each tus route a client uses, for a fault: set up before it (setUpProbes), sent while
// it lasts (probeEveryRoute) and answered whenever the server can. What each answered is what a
// client would have been told; startOverAnswers (balancer.ts) says which of those make it start over.
import { create, PATCH_TYPE, tus } from './tus.ts';

export interface Probes {
  endpoint: string;
  /** An upload finished before the fault (GET). */
  finished: string;
  /** An unfinished upload at offset 0 (HEAD, PATCH). */
  unfinished: string;
  /** An unfinished upload to terminate (DELETE). */
  doomed: string;
}

export interface ProbeAnswer {
  method: string;
  path: string;
  status: number;
}

export async function setUpProbes(endpoint: string): Promise<Probes> {
  const finished = await create(endpoint, 10, { name: 'probe-finished.bin' });
  const done = await tus('PATCH', finished, { 'Upload-Offset': '0', ...PATCH_TYPE }, '0123456789');
  if (done.status !== 200 && done.status !== 204) throw new Error(`probe upload: PATCH ${done.status}`);
  return { endpoint, finished, unfinished: await create(endpoint, 1000), doomed: await create(endpoint, 1000) };
}

/** OPTIONS, POST, HEAD, PATCH, GET and DELETE, all at once; resolves once every one is answered. */
export function probeEveryRoute(p: Probes): Promise<ProbeAnswer[]> {
  const one = async (
    method: string,
    url: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<ProbeAnswer> => ({
    method,
    path: new URL(url).pathname,
    status: (await tus(method, url, headers, body)).status,
  });
  return Promise.all([
    one('OPTIONS', p.endpoint),
    one('POST', p.endpoint, { 'Upload-Length': '10' }),
    one('HEAD', p.unfinished),
    one('PATCH', p.unfinished, { 'Upload-Offset': '0', ...PATCH_TYPE }, 'x'.repeat(100)),
    one('GET', p.finished),
    one('DELETE', p.doomed),
  ]);
}
