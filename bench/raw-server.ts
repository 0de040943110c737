// The third side: the least a node server can do for a tus PATCH with md5 — node:http, the body piped
// through node's crypto md5 into the file. Just enough tus (POST, HEAD, PATCH) for the bench client;
// no validation, no locking, offsets in memory. It shows what node itself allows on this machine.
// Without md5 (`raw-plain`) it shows the HTTP + file-write limit alone, for comparison.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listen, type BenchServer } from './reference-server.ts';

interface RawUpload {
  length: number;
  offset: number;
  md5: crypto.Hash;
}

/** Hashes every chunk on its way to the file. */
const hashing = (hash: crypto.Hash) =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });

export function startRawServer(storeDir: string, options: { md5: boolean }): Promise<BenchServer> {
  const uploads = new Map<string, RawUpload>();
  return listen(async (req, res) => {
    const headers = { 'Tus-Resumable': '1.0.0' };
    try {
      if (req.method === 'POST') {
        const id = crypto.randomBytes(16).toString('hex');
        fs.writeFileSync(path.join(storeDir, id), '');
        uploads.set(id, { length: Number(req.headers['upload-length']), offset: 0, md5: crypto.createHash('md5') });
        res.writeHead(201, { ...headers, Location: `/files/${id}` }).end();
        return;
      }
      const id = req.url?.split('/').pop() ?? '';
      const upload = uploads.get(id);
      if (!upload) {
        res.writeHead(404, headers).end();
        return;
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { ...headers, 'Upload-Offset': upload.offset, 'Upload-Length': upload.length }).end();
        return;
      }
      const offset = Number(req.headers['upload-offset']);
      const file = fs.createWriteStream(path.join(storeDir, id), { flags: 'r+', start: offset });
      await (options.md5 ? pipeline(req, hashing(upload.md5), file) : pipeline(req, file));
      upload.offset = offset + file.bytesWritten;
      const done = upload.offset === upload.length;
      res
        .writeHead(204, {
          ...headers,
          'Upload-Offset': upload.offset,
          ...(done && options.md5 && { 'Upload-Md5': upload.md5.digest('hex') }),
        })
        .end();
      if (done) uploads.delete(id);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, headers).end((e as Error).message);
    }
  });
}
