// The running digests on the hashing thread, fed two ways: copied through the ring (update) and read
// where they are in a shared buffer (updateShared, the S3 store's part buffers), interleaved across
// uploads; snapshots taken between them resume to the digests of the whole.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { DigestState } from '../server/hashing/digest-state.ts';
import { hashThread, setHashThreadIdleMs } from '../server/hashing/hash-thread.ts';
import { patternBytes } from './helpers/files.ts';

const hex = (algorithm: string, bytes: Uint8Array) => crypto.createHash(algorithm).update(bytes).digest('hex');

test('bytes read from shared buffers and copied through the ring, for two uploads at once, give the digests of the \
whole; a snapshot taken between them continues to the same digests', async () => {
  const a = patternBytes(3 * 2 ** 20 + 17, 5);
  const b = patternBytes(2 ** 20 + 3, 9);
  const shared = Buffer.from(new SharedArrayBuffer(a.length));
  a.copy(shared);
  const one = await DigestState.fresh(['md5', 'sha1']);
  const two = await DigestState.fresh(['md5']);
  try {
    one.updateShared(shared.subarray(0, 2 ** 20));
    await two.update(b.subarray(0, 1000));
    one.updateShared(shared.subarray(2 ** 20, 2 * 2 ** 20));
    await one.update(a.subarray(2 * 2 ** 20, 2 * 2 ** 20 + 5));
    const halfway = await one.snapshot();
    one.updateShared(shared.subarray(2 * 2 ** 20 + 5));
    await two.update(b.subarray(1000));
    const whole = await one.digests();
    assert.equal(whole.md5, hex('md5', a));
    assert.equal(whole.sha1, hex('sha1', a));
    assert.equal(whole.size, a.length);
    assert.equal((await two.digests()).md5, hex('md5', b));

    const resumed = await DigestState.fromSnapshot(halfway, ['md5', 'sha1']);
    assert.ok(resumed);
    try {
      assert.equal(resumed.offset, 2 * 2 ** 20 + 5);
      resumed.updateShared(shared.subarray(resumed.offset));
      assert.equal((await resumed.digests()).md5, hex('md5', a));
    } finally {
      resumed.release();
    }
  } finally {
    one.release();
    two.release();
  }
});

test('updateShared refuses bytes that are not in a shared buffer (they could change before they are \
hashed)', async () => {
  const state = await DigestState.fresh(['md5']);
  try {
    assert.throws(() => state.updateShared(Buffer.alloc(10)), /SharedArrayBuffer/);
    assert.equal(state.offset, 0);
  } finally {
    state.release();
  }
});

test('the hashing thread goes once no upload has hashers open on it, not before; the next upload gets a new one that \
hashes right', async () => {
  setHashThreadIdleMs(150);
  try {
    const bytes = patternBytes(2 ** 20 + 11, 3);
    const kept = await DigestState.fresh(['md5']);
    const first = await hashThread();
    await kept.update(bytes.subarray(0, 1000));
    // An upload's state stays open on the thread well past the idle time: the thread stays.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await hashThread(), first, 'the thread went while an upload had hashers open on it');
    await kept.update(bytes.subarray(1000));
    assert.equal((await kept.digests()).md5, hex('md5', bytes));
    kept.release();
    await new Promise((r) => setTimeout(r, 500));
    const next = await DigestState.fresh(['md5', 'sha1']);
    try {
      assert.notEqual(await hashThread(), first, 'the idle thread is still there');
      await next.update(bytes);
      const digests = await next.digests();
      assert.equal(digests.md5, hex('md5', bytes));
      assert.equal(digests.sha1, hex('sha1', bytes));
    } finally {
      next.release();
    }
  } finally {
    setHashThreadIdleMs(30_000);
  }
});
