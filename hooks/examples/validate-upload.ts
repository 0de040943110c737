// Example module hook: authorise and validate an upload before it is created.
//   tuspass start --hooks-module hooks/examples/validate-upload.ts
// Settings (environment): UPLOAD_TOKEN (if set, clients must send `Authorization: Bearer <token>`),
// UPLOAD_MAX_BYTES (default 100 MiB), UPLOAD_TYPES (comma-separated, `image/*` style; default any).
// Rejections carry a status and a JSON body the client sees, as a tusd hook's would.
import { defineHooks, type HookRequest, type HookResponse } from '../index.ts';

const token = process.env.UPLOAD_TOKEN;
const maxBytes = Number(process.env.UPLOAD_MAX_BYTES ?? 100 * 1024 * 1024);
const types = (process.env.UPLOAD_TYPES ?? '')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);

const reject = (status: number, message: string): HookResponse => ({
  RejectUpload: true,
  HTTPResponse: {
    StatusCode: status,
    Body: JSON.stringify({ message }),
    Header: { 'Content-Type': 'application/json' },
  },
});

const typeAllowed = (type: string) =>
  types.some((t) => (t.endsWith('/*') ? type.startsWith(t.slice(0, -1)) : type === t));

export default defineHooks({
  'pre-create'(request: HookRequest): HookResponse {
    const { Upload: upload, HTTPRequest: http } = request.Event;
    if (token) {
      // Header names arrive lower-case from node; tusd sends them canonical: accept both.
      const auth = (http.Header.authorization ?? http.Header.Authorization ?? [])[0];
      if (auth !== `Bearer ${token}`) return reject(401, 'missing or wrong upload token');
    }
    if (upload.SizeIsDeferred) return reject(400, 'the upload size must be known when the upload is created');
    if (upload.Size > maxBytes)
      return reject(413, `the file is ${upload.Size} bytes; at most ${maxBytes} are accepted`);
    const type = upload.MetaData.filetype ?? '';
    if (types.length && !typeAllowed(type))
      return reject(415, `files of type "${type || 'unknown'}" are not accepted; allowed: ${types.join(', ')}`);
    // Keep only the base name: a client-chosen path must not travel into the app's records.
    const name = upload.MetaData.filename;
    if (name !== undefined) {
      const base = name.split(/[\\/]/).pop() ?? '';
      if (base !== name) return { ChangeFileInfo: { MetaData: { ...upload.MetaData, filename: base } } };
    }
    return {};
  },
});
