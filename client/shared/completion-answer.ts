// Reads what the upload server answered to the final PATCH of an upload
// (docs/completion-form.md, "Answer and what it causes"): the completion service's record,
// a pending notice, or its rejection. Shared by the page and `tuspass push`. The header and the
// record's shape are the server's own (core/wire.ts, core/record.ts).
import type { CompletionRecord } from '../../core/record.ts';
import { COMPLETION_HEADER } from '../../core/wire.ts';

/** The part of a tus-js-client HttpResponse this module needs (same shape in Node and browsers). */
export interface AnswerResponse {
  getStatus(): number;
  getHeader(name: string): string | undefined;
  getBody(): string;
}

export type CompletionAnswer =
  | { kind: 'delivered'; status: number; record: CompletionRecord | undefined; body: string }
  | { kind: 'pending'; status: number }
  | { kind: 'rejected'; status: number; code: string | undefined; message: string }
  /** No Tuspass-Completion header: a plain tus server, or a proxy stripped it. */
  | { kind: 'unknown'; status: number; body: string };

export function readCompletionAnswer(res: AnswerResponse): CompletionAnswer {
  const status = res.getStatus();
  const body = res.getBody() ?? '';
  const header = (res.getHeader(COMPLETION_HEADER) ?? '').trim().toLowerCase();
  if (header === 'pending') return { kind: 'pending', status };
  if (header === 'rejected') {
    const err = parseErrorBody(body);
    return { kind: 'rejected', status, code: err.code, message: err.message ?? (body.trim() || `status ${status}`) };
  }
  if (header === 'delivered') return { kind: 'delivered', status, record: parseRecord(body), body };
  return { kind: 'unknown', status, body };
}

export function isCompletionRejection(res: AnswerResponse | null | undefined): boolean {
  return (res?.getHeader(COMPLETION_HEADER) ?? '').trim().toLowerCase() === 'rejected';
}

function parseRecord(body: string): CompletionRecord | undefined {
  const json = parseJson(body);
  if (!json || typeof json !== 'object') return undefined;
  const r = json as Record<string, unknown>;
  if (typeof r.id !== 'string') return undefined;
  return {
    id: r.id,
    name: typeof r.name === 'string' ? r.name : '',
    size: typeof r.size === 'number' ? r.size : Number(r.size),
    md5: typeof r.md5 === 'string' ? r.md5 : '',
    url: typeof r.url === 'string' ? r.url : '',
  };
}

/** Our services answer errors as `{"error":{"code","message"}}`; other apps may answer anything. */
export function parseErrorBody(body: string): { code?: string; message?: string } {
  const json = parseJson(body) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const e = json && typeof json === 'object' ? json.error : undefined;
  if (!e || typeof e !== 'object') return {};
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    message: typeof e.message === 'string' ? e.message : undefined,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
