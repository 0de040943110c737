// A single instance's upload locks (server/backends/locker/memory-locker.ts): one holder per id, the
// holder asked to let go by whoever waits, waiters served in order, a wait that ends (its signal, its
// time) refused 423 without taking the lock from the next in line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLocker } from '../server/backends/locker/memory-locker.ts';
import { withLock } from '../server/backends/locker/upload-lock.ts';

const never = () => new AbortController().signal;

test('one holder per id: a waiter asks the holder to let go, then gets the lock once it does; other ids are \
free', async () => {
  const locker = new MemoryLocker();
  const asked: string[] = [];
  const first = locker.newLock('a');
  await first.lock(never(), () => void asked.push('first'));
  await locker.newLock('b').lock(never(), () => {});
  const second = locker.newLock('a');
  let held = false;
  const waiting = second.lock(never(), () => void asked.push('second')).then(() => (held = true));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(asked, ['first'], 'the holder was asked, once');
  assert.equal(held, false);
  await first.unlock();
  await waiting;
  assert.equal(held, true);
  await second.unlock();
  // Free again: taken at once.
  await withLock(
    locker,
    'a',
    () => {},
    async () => {},
  );
});

test('waiters are served in the order they came; each new holder is asked to let go while others still \
wait', async () => {
  const locker = new MemoryLocker();
  const asked: string[] = [];
  const order: string[] = [];
  const holder = locker.newLock('x');
  await holder.lock(never(), () => void asked.push('holder'));
  const waiters = ['w1', 'w2', 'w3'].map((name) => {
    const lock = locker.newLock('x');
    const done = lock
      .lock(never(), () => void asked.push(name))
      .then(async () => {
        order.push(name);
        await new Promise((r) => setImmediate(r));
        await lock.unlock();
      });
    return done;
  });
  await holder.unlock();
  await Promise.all(waiters);
  assert.deepEqual(order, ['w1', 'w2', 'w3']);
  assert.ok(asked.includes('w1') && asked.includes('w2'), `holders asked while others waited: ${asked.join(',')}`);
  assert.ok(!asked.includes('w3'), 'the last holder, with nobody behind it, was not asked');
});

test("a wait that ends (its signal, or the locker's time) is 423 ERR_UPLOAD_LOCKED and leaves the queue", async () => {
  const locker = new MemoryLocker(50);
  const holder = locker.newLock('y');
  await holder.lock(never(), () => {});
  const aborted = new AbortController();
  const byAbort = locker.newLock('y').lock(aborted.signal, () => {});
  aborted.abort();
  await assert.rejects(byAbort, (e: { code?: string }) => e.code === 'ERR_UPLOAD_LOCKED');
  const started = Date.now();
  await assert.rejects(
    locker.newLock('y').lock(never(), () => {}),
    (e: { code?: string }) => e.code === 'ERR_UPLOAD_LOCKED',
  );
  assert.ok(Date.now() - started >= 45, 'waited its time');
  // A holder whose onRelease throws: the waiter is not the one that fails.
  const stubborn = locker.newLock('z');
  await stubborn.lock(never(), () => {
    throw new Error('holder refuses');
  });
  const next = locker.newLock('z').lock(never(), () => {});
  await stubborn.unlock();
  await next;
  // Nobody left in the queue of 'y': its holder's release frees it for a newcomer at once.
  await holder.unlock();
  await withLock(
    locker,
    'y',
    () => {},
    async () => {},
  );
});

test('unlocking a lock not held, or locking one lock twice, is a bug said at once', async () => {
  const locker = new MemoryLocker();
  const lock = locker.newLock('q');
  await assert.rejects(lock.unlock(), /does not hold it/);
  await lock.lock(never(), () => {});
  await assert.rejects(
    lock.lock(never(), () => {}),
    /taken twice/,
  );
  await lock.unlock();
});
