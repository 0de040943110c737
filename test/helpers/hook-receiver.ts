// An HTTP hook receiver for tests: records every hook request, answers with a function of the payload,
// and can go down and come back up on the same port (to test the durable notice queue).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { HookRequest, HookResponse } from '../../hooks/types.ts';

export interface ReceivedHook {
  request: HookRequest;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface HookReceiver {
  url: string;
  received: ReceivedHook[];
  /** Sets the answer: a HookResponse, or [status, body] for a non-JSON or failing answer. */
  answer: (request: HookRequest) => HookResponse | [number, string];
  down(): Promise<void>;
  up(): Promise<void>;
  /** Resolves once `predicate` holds for the received list, or rejects after the timeout. */
  until(predicate: (received: ReceivedHook[]) => boolean, timeoutMs?: number): Promise<void>;
}

export async function startHookReceiver(t: TestContext, options: { down?: boolean } = {}): Promise<HookReceiver> {
  const received: ReceivedHook[] = [];
  let server: http.Server | undefined;
  let port = 0;
  const receiver: HookReceiver = {
    url: '',
    received,
    answer: () => ({}),
    async down() {
      if (!server) return;
      const s = server;
      server = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    async up() {
      if (server) return;
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const request = JSON.parse(body) as HookRequest;
          received.push({ request, headers: req.headers, body, at: Date.now() });
          const a = receiver.answer(request);
          if (Array.isArray(a)) res.writeHead(a[0], { 'Content-Type': 'text/plain' }).end(a[1]);
          else res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(a));
        });
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', () => resolve()));
      port = (server.address() as AddressInfo).port;
      receiver.url = `http://127.0.0.1:${port}/hooks`;
    },
    async until(predicate, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > end)
          throw new Error(
            `hook receiver: condition not met after ${timeoutMs} ms (${received.length} received: ` +
              `${received.map((r) => r.request.Type).join(', ')})`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  await receiver.up();
  if (options.down) await receiver.down();
  t.after(() => receiver.down());
  return receiver;
}
