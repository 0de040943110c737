// A TCP relay in front of a server that can go silent: connections stay open and nothing more moves
// either way (nor does a new connection reach the server) until it speaks again. What a stalled
// object store or a dead network path looks like to its client.
import net from 'node:net';
import { after } from 'node:test';

export interface SilentProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  silent(on: boolean): void;
}

export async function startSilentProxy(upstream: string): Promise<SilentProxy> {
  const target = new URL(upstream);
  const pairs = new Set<[net.Socket, net.Socket]>();
  const held = new Set<net.Socket>();
  let quiet = false;
  const flow = ([a, b]: [net.Socket, net.Socket], on: boolean) => {
    if (on) {
      a.pipe(b);
      b.pipe(a);
    } else {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  };
  const relay = (client: net.Socket) => {
    const server = net.connect(Number(target.port), target.hostname);
    const pair: [net.Socket, net.Socket] = [client, server];
    pairs.add(pair);
    for (const s of pair) {
      s.on('error', () => undefined);
      s.on('close', () => {
        pairs.delete(pair);
        for (const other of pair) other.destroy();
      });
    }
    flow(pair, true);
  };
  const proxy = net.createServer((client) => {
    client.on('error', () => undefined);
    if (!quiet) return relay(client);
    client.pause();
    held.add(client);
    client.on('close', () => held.delete(client));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  after(async () => {
    for (const pair of pairs) for (const s of pair) s.destroy();
    for (const s of held) s.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    silent(on) {
      quiet = on;
      for (const pair of pairs) flow(pair, !on);
      if (!on) {
        for (const client of held) relay(client);
        held.clear();
      }
    },
  };
}
