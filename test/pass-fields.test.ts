// Pass-through fields cannot impersonate generated ones: with PASS_FIELDS='.*',
// metadata keys like file1.path or file2.md5 are dropped and logged; the real ones reach the app.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { completionForm } from '../server/complete-form/write.ts';
import { parseCompletionForm } from '../server/complete-form/read.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { metadata, PATCH_TYPE, tus } from './helpers/tus.ts';

const FORGED = {
  'file1.path': '/etc/passwd',
  'file1.md5': '0'.repeat(32),
  'file1.size': '1',
  'file1.name': 'FORGED.exe',
  'file1.id': 'forged',
  'file1.owner': 'admin',
  'file2.md5': '1'.repeat(32),
  'file2.path': '/etc/shadow',
  'photo.content_type': 'text/html',
  'x.y.sha1': 'a'.repeat(40),
  'z.crc32': 'deadbeef',
};

test("PASS_FIELDS='.*': metadata keys that read as generated \
fields are dropped and logged, the rest passes", async (t) => {
  const s = await startTestServer(t, { passFields: /.*/ });
  const bytes = Buffer.from('real bytes');
  const created = await tus(
    'POST',
    s.endpoint,
    {
      'Upload-Length': String(bytes.length),
      ...PATCH_TYPE,
      'Upload-Metadata': metadata({
        filename: 'real.txt',
        description: 'holiday',
        'notes.pathology': 'kept',
        ...FORGED,
      }),
    },
    bytes,
  );
  assert.equal(created.status, 201, created.body);
  const id = created.headers.location!.split('/').pop()!;
  const [record] = (await recordsWhenPresent(s.url)) as Array<{
    name: string;
    path: string;
    md5: string;
    size: number;
    upload_id: string;
    fields: Record<string, string>;
  }>;
  assert.ok(record);
  assert.equal(record.name, 'real.txt');
  assert.equal(record.path, path.join(s.config.storeDir, id));
  assert.equal(record.md5, crypto.createHash('md5').update(bytes).digest('hex'));
  assert.equal(record.size, bytes.length);
  assert.equal(record.upload_id, id);
  for (const key of Object.keys(FORGED)) assert.ok(!(key in record.fields), `${key} not passed through`);
  assert.equal(record.fields.description, 'holiday');
  assert.equal(record.fields['notes.pathology'], 'kept', 'only the exact generated suffixes are dropped');
  for (const key of Object.keys(FORGED))
    assert.ok(
      s.logs.some((l) => l.includes(`"${key}" dropped`)),
      `${key} logged`,
    );
});

test('the form builder drops them whatever the pattern; the parser does not record them as pass-through fields', () => {
  const upload = {
    ID: 'u1',
    Size: 3,
    Offset: 3,
    MetaData: { fieldname: 'doc', description: 'd', ...FORGED },
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: { Type: 'filestore', Path: '/data/uploads/u1' },
    Digests: { md5: 'b'.repeat(32), size: 3 },
  };
  const logs: string[] = [];
  const form = completionForm(upload as never, { passFields: /.*/, log: (l) => logs.push(l) });
  for (const key of Object.keys(FORGED)) assert.equal(form.get(key), null, key);
  assert.equal(form.get('doc.path'), '/data/uploads/u1');
  assert.equal(form.get('description'), 'd');
  assert.equal(logs.length, Object.keys(FORGED).length);
  // A form from elsewhere carrying another field's generated keys: not recorded as pass-through fields.
  const parsed = parseCompletionForm(
    `${form.toString()}&file2.md5=${'1'.repeat(32)}&photo.content_type=text%2Fhtml&note=n`,
  );
  assert.equal(parsed.field, 'doc');
  assert.deepEqual(Object.keys(parsed.fields).sort(), ['description', 'fieldname', 'note']);
});
