// An Express app that receives tuspass's completion form (docs/completion-form.md): checks its
// Tuspass-Signature, checks the file is in tuspass's store, records it, answers. tuspass relays the
// answer to the client that uploaded. Records are kept in memory here; keep yours in your database.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';

const SECRET =
  process.env.TUSPASS_SECRET ||
  (process.env.TUSPASS_SECRET_FILE && fs.readFileSync(process.env.TUSPASS_SECRET_FILE, 'utf8').trim());
if (!SECRET) throw new Error("set TUSPASS_SECRET (tuspass's COMPLETION_SECRET) or TUSPASS_SECRET_FILE");
const STORE_DIR = fs.realpathSync(process.env.TUSPASS_STORE_DIR || '/data/uploads');

// The form's key: HKDF-SHA256 of the secret, labelled for completion forms.
const FORM_KEY = Buffer.from(crypto.hkdfSync('sha256', SECRET, Buffer.alloc(0), 'tuspass completion-form v2', 32));

/** Tuspass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">. */
function verifyTuspass(body, header, toleranceS = 300) {
  const parts = String(header ?? '')
    .split(',')
    .map((p) => p.split('='))
    .filter((p) => p.length === 2);
  const ts = parts.filter(([k]) => k.trim() === 't').map(([, v]) => v.trim());
  const sigs = parts.filter(([k]) => k.trim() === 'v1').map(([, v]) => v.trim());
  if (ts.length !== 1 || !/^\d+$/.test(ts[0]) || sigs.length === 0) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts[0])) > toleranceS) return false;
  const expected = crypto.createHmac('sha256', FORM_KEY).update(`${ts[0]}.`).update(body).digest();
  return sigs.some((s) => /^[0-9a-f]{64}$/.test(s) && crypto.timingSafeEqual(Buffer.from(s, 'hex'), expected));
}

/** The form's path is a file of that size inside tuspass's store (never a path a client could choose). */
function inStore(file, size) {
  try {
    const real = fs.realpathSync(file);
    return real.startsWith(STORE_DIR + path.sep) && fs.statSync(real).size === size;
  } catch {
    return false;
  }
}

const uploads = new Map(); // upload id → record
const app = express();

// The raw body: the signature covers the bytes as sent, before any form parsing.
app.post('/complete/', express.raw({ type: () => true, limit: '1mb' }), (req, res) => {
  if (!verifyTuspass(req.body, req.get('Tuspass-Signature')))
    return res.status(403).json({ message: 'Tuspass-Signature missing or wrong' });
  const form = new URLSearchParams(req.body.toString('utf8'));
  // One form per tus upload (file1 unless the client named the field); a multipart POST to /upload sends all its files
  // in one.
  const prefixes = [...form.keys()].filter((k) => k.endsWith('.path')).map((k) => k.slice(0, -'.path'.length));
  if (prefixes.length === 0) return res.status(400).json({ message: 'no file in the form' });
  const recorded = [];
  for (const prefix of prefixes) {
    const size = Number(form.get(`${prefix}.size`));
    // A 4xx among tuspass's CLEANUP_STATUSES: tuspass removes the upload.
    if (!inStore(form.get(`${prefix}.path`), size))
      return res.status(400).json({ message: `${prefix}: not a file of that size in the store` });
    const id = form.get(`${prefix}.id`);
    // A form delivered again (after a timeout, a restart) is recorded once.
    if (!uploads.has(id)) {
      uploads.set(id, {
        id,
        name: form.get(`${prefix}.name`),
        size,
        md5: form.get(`${prefix}.md5`),
        path: form.get(`${prefix}.path`),
        owner: form.get(`${prefix}.owner`) ?? '',
        description: form.get('description') ?? '',
      });
    }
    recorded.push(uploads.get(id));
  }
  res.json({ message: 'Upload Complete', files: recorded.map(({ id, name, size, md5 }) => ({ id, name, size, md5 })) });
});

app.get('/uploads', (_req, res) => res.json([...uploads.values()]));

const server = app.listen(Number(process.env.PORT ?? 8000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`completion view on http://${address}:${port}/complete/`);
});
