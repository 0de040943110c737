// Split deployment (docker-compose): the upload server serves the page and passes /api/uploads
// through to the completion service running on its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCompletionServer } from '../server/completion/server.ts';
import { configFor } from '../server/config.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

test('the upload server passes /api/uploads and downloads through, and says 502 when the service is gone', async (t) => {
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(configFor({ dataDir, completionPort: 0, completionSecret: 'test-secret-0123456789' }), { log: () => {} });
  let serviceUp = true;
  t.after(() => (serviceUp ? service.close() : undefined));
  const s = await startTestServer(t, { dataDir, completionUrl: `${service.url}/complete/` }, { completion: false });

  const bytes = patternBytes(20_000, 41);
  const url = await create(s.endpoint, bytes.length, { filename: 'split.bin' });
  const answer = JSON.parse((await patch(url, 0, bytes)).body);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.md5, md5(bytes));
  const range = await fetch(`${s.url}${answer.url}`, { headers: { Range: 'bytes=0-9' } });
  assert.equal(range.status, 206);
  assert.deepEqual(Buffer.from(await range.arrayBuffer()), bytes.subarray(0, 10));

  await service.close();
  serviceUp = false;
  const gone = await fetch(`${s.url}/api/uploads`);
  assert.equal(gone.status, 502);
  assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'ERR_COMPLETION_UNREACHABLE');
});
