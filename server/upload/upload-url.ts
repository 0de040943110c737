// Upload URLs: made from the request (as @tus/server makes Location) and read back from
// Upload-Concat lists, which may hold absolute or relative URLs.
import type express from 'express';
import { TUS_PATH } from './tus-headers.ts';

export function uploadUrl(req: express.Request, id: string): string {
  return `${req.protocol}://${req.get('host')}${TUS_PATH}/${id}`;
}

/** The upload id a URL names, or undefined when it is not one of our upload URLs. */
export function idFromUrl(url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${TUS_PATH}/([A-Za-z0-9_-]{1,128})$`).exec(path);
  return m?.[1];
}
