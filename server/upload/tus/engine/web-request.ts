// @tus/server 2.x turns the node request into a web Request (srvx's NodeRequest) and hands only that
// to its callbacks. srvx keeps the node request on it as `runtime.node.req`; tuspass reads the
// creating client (its token, its address, the body's headers) from there. Checked by
// test/tus-engine-contract.test.ts.
import type { IncomingMessage } from 'node:http';

export function nodeRequestOf(req: Request): IncomingMessage {
  const node = (req as Request & { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
  if (!node) throw new Error('tuspass runs @tus/server on node: the request has no node request attached');
  return node;
}
