// The interop versions of the IETF "Resumable Uploads for HTTP" draft (draft-ietf-httpbis-resumable-upload)
// this server speaks, and what differs between them. A client names its version in every request
// (Upload-Draft-Interop-Version); the version is bumped only for breaking changes, so several
// draft revisions share one. docs/ietf-draft.md has the same table in words.

export type ProblemType = 'mismatching-upload-offset' | 'completed-upload' | 'inconsistent-upload-length';

export interface DraftVersion {
  interop: number;
  /** The draft revisions that define this interop version. */
  drafts: string;
  /** -01 said `Upload-Incomplete: ?1` for "more to come"; -02 on say `Upload-Complete: ?0`. */
  completeHeader: 'Upload-Incomplete' | 'Upload-Complete';
  /** -03 on: 104 answers with Upload-Offset report progress while a body arrives. */
  progress: boolean;
  /** -04 on: "appending ... using the application/partial-upload media type" is required. */
  partialUploadType: boolean;
  /** -04 on: the Upload-Limit field; its lifetime key was `expires` until -05, `max-age` from -06. */
  limitAgeKey: 'expires' | 'max-age' | undefined;
  /** The problem types (RFC 9457) the version defines. */
  problems: ReadonlySet<ProblemType>;
}

const v = (interop: number, drafts: string, rest: Omit<DraftVersion, 'interop' | 'drafts'>): DraftVersion => ({
  interop,
  drafts,
  ...rest,
});
const none = new Set<ProblemType>();
const fromFour = new Set<ProblemType>(['mismatching-upload-offset', 'completed-upload']);
const all = new Set<ProblemType>([...fromFour, 'inconsistent-upload-length']);

export const DRAFT_VERSIONS: ReadonlyMap<number, DraftVersion> = new Map(
  [
    v(3, '-01', {
      completeHeader: 'Upload-Incomplete',
      progress: false,
      partialUploadType: false,
      limitAgeKey: undefined,
      problems: none,
    }),
    v(4, '-02', {
      completeHeader: 'Upload-Complete',
      progress: false,
      partialUploadType: false,
      limitAgeKey: undefined,
      problems: none,
    }),
    v(5, '-03', {
      completeHeader: 'Upload-Complete',
      progress: true,
      partialUploadType: false,
      limitAgeKey: undefined,
      problems: none,
    }),
    v(6, '-04, -05', {
      completeHeader: 'Upload-Complete',
      progress: true,
      partialUploadType: true,
      limitAgeKey: 'expires',
      problems: fromFour,
    }),
    v(7, '-06 to -08', {
      completeHeader: 'Upload-Complete',
      progress: true,
      partialUploadType: true,
      limitAgeKey: 'max-age',
      problems: all,
    }),
    v(8, '-09 on', {
      completeHeader: 'Upload-Complete',
      progress: true,
      partialUploadType: true,
      limitAgeKey: 'max-age',
      problems: all,
    }),
  ].map((d) => [d.interop, d]),
);

export const INTEROP_HEADER = 'Upload-Draft-Interop-Version';
export const PARTIAL_UPLOAD_TYPE = 'application/partial-upload';

/** The version a request names: undefined when it names none, null when it names one not served. */
export function draftVersionOf(value: string | undefined): DraftVersion | null | undefined {
  if (value === undefined) return undefined;
  // An Integer (RFC 9651), possibly with parameters.
  const m = /^\s*(\d{1,15})\s*(?:;.*)?$/.exec(value);
  return (m && DRAFT_VERSIONS.get(Number(m[1]))) || null;
}

/** The completeness field of this version, for an upload that is (or is not) complete. */
export function completeField(version: DraftVersion, complete: boolean): Record<string, string> {
  const value = version.completeHeader === 'Upload-Complete' ? complete : !complete;
  return { [version.completeHeader]: value ? '?1' : '?0' };
}
