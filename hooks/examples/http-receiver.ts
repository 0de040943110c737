// Example HTTP hook receiver: checks the signature (the hook-payload key, dated within
// SIGNATURE_TOLERANCE), drops duplicate notices by Hook-Notice-Id, refuses uploads above a size in
// pre-create, and logs every event.
//   HOOK_SECRET=<completion secret> node --import tsx hooks/examples/http-receiver.ts [port]
//   tuspass start --hooks-http http://127.0.0.1:8081/hooks --completion-secret <same secret>
// Answers are tusd hook responses, so this receiver serves tusd too (its signature check aside).
import http from 'node:http';
import { parseDuration } from '../../core/parse.ts';
import { NOTICE_ID_HEADER, SIGNATURE_HEADER, verifySignature, type HookRequest, type HookResponse } from '../index.ts';

const secret = process.env.HOOK_SECRET;
const maxBytes = Number(process.env.UPLOAD_MAX_BYTES ?? 100 * 1024 * 1024);
const port = Number(process.argv[2] ?? 8081);
const toleranceMs = parseDuration(process.env.SIGNATURE_TOLERANCE ?? '5m');
/** Notice ids seen; a real receiver keeps them in its database, beside what the notice changed. */
const seen = new Set<string>();

function answer(request: HookRequest): HookResponse {
  const upload = request.Event.Upload;
  if (request.Type === 'pre-create' && upload.Size > maxBytes) {
    return {
      RejectUpload: true,
      HTTPResponse: {
        StatusCode: 413,
        Body: JSON.stringify({ message: `at most ${maxBytes} bytes` }),
        Header: { 'Content-Type': 'application/json' },
      },
    };
  }
  return {};
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (
      secret &&
      !verifySignature(
        secret,
        'hook-payload',
        body,
        req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined,
        { toleranceMs },
      )
    ) {
      res.writeHead(401).end('bad signature\n');
      return;
    }
    const request = JSON.parse(body.toString('utf8')) as HookRequest;
    const noticeId = req.headers[NOTICE_ID_HEADER.toLowerCase()] as string | undefined;
    if (noticeId && seen.has(noticeId)) {
      console.log(`${request.Type} ${request.Event.Upload.ID}: duplicate notice ${noticeId}, ignored`);
    } else {
      if (noticeId) seen.add(noticeId);
      console.log(
        `${request.Type} ${request.Event.Upload.ID} offset ` +
          `${request.Event.Upload.Offset}/${request.Event.Upload.Size}${noticeId ? ` notice ${noticeId}` : ''}`,
      );
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer(request)));
  });
});
server.listen(port, '127.0.0.1', () =>
  console.log(`hook receiver on http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`),
);
