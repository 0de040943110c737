// Reads a hook's answer given as JSON text (command and HTTP hooks) into a HookResponse, refusing
// shapes that would otherwise surface later as a confusing response to the client.
import type { HookResponse } from './types.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, where: string): Record<string, string> {
  if (!isObject(v)) throw new Error(`${where} must be an object of strings`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new Error(`${where}.${k} must be a string`);
  return v as Record<string, string>;
}

/** RFC 9110's field name (a token) and a field value node sends (no CR, LF or NUL, nothing past Latin-1). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The answer's framing and the connection's fate are the server's to say: a hook's Content-Length over
 * an empty body would make the client wait for bytes never sent, and read the next answer on the
 * connection as their rest; Connection, Upgrade and the other hop-by-hop fields (RFC 9110 7.6.1) are
 * about this one connection, not the hook's message.
 */
const FRAMING = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
]);

/**
 * Headers the client's answer can carry: a name or value that cannot be sent is the hook's failure, not the server's.
 */
function headerMap(v: unknown): Record<string, string> {
  const headers = stringMap(v, 'HTTPResponse.Header');
  for (const [name, value] of Object.entries(headers)) {
    if (!FIELD_NAME.test(name))
      throw new Error(`HTTPResponse.Header: ${JSON.stringify(name.slice(0, 100))} is no header name`);
    if (FRAMING.has(name.toLowerCase())) {
      throw new Error(`HTTPResponse.Header.${name} frames the answer or the connection: the server sets it`);
    }
    if (!FIELD_VALUE.test(value))
      throw new Error(`HTTPResponse.Header.${name} holds a line break or control character`);
  }
  return headers;
}

/**
 * A hook's failure in our words (`message`, the client's answer), and what the hook itself wrote
 * (`logDetail`: its output, which may hold its paths or addresses) for the log only.
 */
export const hookFailure = (message: string, logDetail?: string): Error =>
  Object.assign(new Error(message), logDetail ? { logDetail } : {});

/** The same failure, said by the transport (`HOOKS_HTTP: …`), its log detail kept. */
export const hookFailureIn = (where: string, e: unknown): Error =>
  hookFailure(`${where}: ${(e as Error).message}`, (e as { logDetail?: string }).logDetail);

/** Empty text is an empty answer, as with tusd's file hooks that print nothing. */
export function parseHookAnswer(text: string): HookResponse {
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // What the hook printed is for the log only (the client's answer says why in our words, runner.ts).
    throw hookFailure('answer is not JSON', JSON.stringify(text.slice(0, 200)));
  }
  return checkHookAnswer(raw);
}

export function checkHookAnswer(raw: unknown): HookResponse {
  if (raw === null || raw === undefined) return {};
  if (!isObject(raw)) throw new Error('answer must be a JSON object');
  const answer: HookResponse = {};
  for (const flag of ['RejectUpload', 'RejectTermination', 'RejectAccess', 'StopUpload'] as const) {
    if (raw[flag] === undefined || raw[flag] === null) continue;
    if (typeof raw[flag] !== 'boolean') throw new Error(`${flag} must be true or false`);
    answer[flag] = raw[flag];
  }
  const http = raw.HTTPResponse;
  if (http !== undefined && http !== null) {
    if (!isObject(http)) throw new Error('HTTPResponse must be an object');
    answer.HTTPResponse = {};
    if (http.StatusCode !== undefined && http.StatusCode !== null && http.StatusCode !== 0) {
      // A final status: a 1xx is an interim answer (100) or a switch of protocols (101), after which the
      // client would take the next request's answer for this one's, or the connection for another protocol.
      const status = http.StatusCode as number;
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new Error('HTTPResponse.StatusCode must be a final HTTP status (200-599)');
      }
      answer.HTTPResponse.StatusCode = http.StatusCode as number;
    }
    if (http.Body !== undefined && http.Body !== null) {
      if (typeof http.Body !== 'string') throw new Error('HTTPResponse.Body must be a string');
      answer.HTTPResponse.Body = http.Body;
    }
    if (http.Header !== undefined && http.Header !== null) answer.HTTPResponse.Header = headerMap(http.Header);
  }
  const change = raw.ChangeFileInfo;
  if (change !== undefined && change !== null) {
    if (!isObject(change)) throw new Error('ChangeFileInfo must be an object');
    answer.ChangeFileInfo = {};
    if (change.ID !== undefined && change.ID !== null && change.ID !== '') {
      if (typeof change.ID !== 'string') throw new Error('ChangeFileInfo.ID must be a string');
      answer.ChangeFileInfo.ID = change.ID;
    }
    if (change.MetaData !== undefined && change.MetaData !== null)
      answer.ChangeFileInfo.MetaData = stringMap(change.MetaData, 'ChangeFileInfo.MetaData');
  }
  return answer;
}
