// Status ranges such as "400-501,505-599", used to decide which completion answers delete an upload.
import { parseList } from './parse.ts';

export interface StatusRanges {
  readonly text: string;
  has(status: number): boolean;
}

export function parseStatusRanges(text: string): StatusRanges {
  const ranges: Array<[number, number]> = [];
  for (const part of parseList(text)) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a status or a range like 400-499`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (lo < 100 || hi > 599 || lo > hi) throw new Error(`"${part}" is not a range of HTTP statuses`);
    ranges.push([lo, hi]);
  }
  return { text, has: (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi) };
}
