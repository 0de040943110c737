// Helpers for the nginx-upload-module endpoint tests: curl as the client, a capturing stand-in app, the store's
// contents.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { checkSignature } from '../../core/signature.ts';

export interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Runs curl with these arguments (no -L: a redirect is seen as it is) and parses the status, headers and body. */
export function curl(args: string[]): Promise<CurlAnswer> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '30', ...args], { maxBuffer: 16 << 20 }, (e, stdout, stderr) => {
      if (e) return reject(new Error(`curl failed: ${stderr || e.message}`));
      // curl -i prints every response (a 100 Continue first); the last one is the answer.
      const blocks = stdout.split(/\r\n\r\n/);
      let i = 0;
      while (/^HTTP\/[\d.]+ 100/.test(blocks[i] ?? '') && i < blocks.length - 1) i++;
      const [statusLine, ...lines] = blocks[i]!.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: blocks.slice(i + 1).join('\r\n\r\n') });
    });
  });
}

/** curl -F for each of `parts` (`name=value`, `field=@file;type=…`), posted to `url`. */
export const postForm = (url: string, parts: string[]): Promise<CurlAnswer> =>
  curl([...parts.flatMap((part) => ['-F', part]), url]);

/** The uploads in a store directory (its hidden files — the journal — left out), with their info files. */
export const storeFiles = (dir: string) => fs.readdirSync(dir).filter((n) => !n.startsWith('.'));

export interface CaptureApp {
  url: string;
  forms: Array<{ params: URLSearchParams; headers: http.IncomingHttpHeaders }>;
  /** Status and body to answer with. */
  answer: { status: number; body: unknown };
  down(): Promise<void>;
  up(): Promise<void>;
}

/** A stand-in for the user's app at COMPLETION_URL: keeps every form, answers as told, can go down and come back. */
export async function startCaptureApp(t: TestContext, status = 200, body: unknown = { ok: true }): Promise<CaptureApp> {
  let server: http.Server | undefined;
  let port = 0;
  const app: CaptureApp = {
    url: '',
    forms: [],
    answer: { status, body },
    async down() {
      const s = server;
      server = undefined;
      if (s)
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
    },
    async up() {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          app.forms.push({ params: new URLSearchParams(Buffer.concat(chunks).toString()), headers: req.headers });
          res.writeHead(app.answer.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(app.answer.body));
        });
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
      port = (server!.address() as AddressInfo).port;
      app.url = `http://127.0.0.1:${port}/complete/`;
    },
  };
  await app.up();
  t.after(() => app.down());
  return app;
}

/** The one form the app received for the request, its signature checked with the completion secret. */
export function signedForm(
  app: CaptureApp,
  secret: string,
): { params: URLSearchParams; headers: http.IncomingHttpHeaders } {
  assert.equal(app.forms.length, 1, 'one form per request');
  const { params, headers } = app.forms[0]!;
  const checked = checkSignature(secret, 'completion-form', params.toString(), String(headers['tuspass-signature']));
  assert.ok(checked.ok, 'the form is signed');
  return { params, headers };
}
