// A request body that can be ended early without destroying its socket: a body cut for
// NETWORK_TIMEOUT (or a stop) keeps what arrived and still gets its answer.
/**
 * The request body as a source that can be ended early without destroying the socket. (Not a
 * Promise.race against one "stopped" promise: every race would stay attached to it, and keep its
 * chunk alive, until the request ends — a whole body in memory.)
 */
export function stoppable(req: AsyncIterable<Buffer>): { source: AsyncIterable<Buffer>; stop(): void } {
  const it = req[Symbol.asyncIterator]();
  let stopped = false;
  let wake: (() => void) | undefined;
  const done: IteratorResult<Buffer> = { done: true, value: undefined };
  const next = (): Promise<IteratorResult<Buffer>> => {
    if (stopped) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      wake = () => resolve(done);
      it.next().then(
        (r) => {
          wake = undefined;
          resolve(r);
        },
        (e) => {
          wake = undefined;
          reject(e);
        },
      );
    });
  };
  const stop = () => {
    stopped = true;
    wake?.();
  };
  return { source: { [Symbol.asyncIterator]: () => ({ next }) }, stop };
}
