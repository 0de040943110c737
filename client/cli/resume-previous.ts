// Decides, before a push starts, what to do with an earlier upload of the same file: resume
// it (saying from where), or — when the server no longer has it (expired: 404/410) — forget it
// and start over, saying so. Also keeps the earlier run's mode: tus-js-client resumes a
// parallel upload with its stored part URLs whatever --parallel says now, but given a
// single-stream upload and parallelUploads > 1 it would start a new parallel upload and never
// store it (its storage key is taken by the old one), so a later kill could not resume.
import type { Upload } from 'tus-js-client';
import { checkPreviousUpload, newestPreviousUpload } from '../shared/previous-upload-check.ts';
import { formatBytes } from '../shared/units.ts';

export interface ResumeStart {
  /** Bytes the server already holds; 0 when starting over. */
  offset: number;
  /** True once a resume or start-over line was printed (so the HEAD answers do not repeat it). */
  announced: boolean;
}

export async function prepareResume(
  upload: Upload,
  file: { name: string; size: number },
  wanted: { resume: boolean; parallel: number },
  say: (line: string) => void,
): Promise<ResumeStart> {
  const storage = upload.options.urlStorage;
  const previous = await upload.findPreviousUploads();
  const forgetAll = async () => {
    for (const p of previous) await storage?.removeUpload(p.urlStorageKey);
  };
  if (!wanted.resume) {
    await forgetAll();
    return { offset: 0, announced: false };
  }
  const newest = newestPreviousUpload(previous);
  if (!newest) return { offset: 0, announced: false };

  const state = await checkPreviousUpload(newest, fetch, upload.options.headers);
  if (state.kind === 'gone') {
    await forgetAll();
    say(
      state.expired
        ? `the earlier upload of ${file.name} expired on the server; starting over`
        : `the server no longer has the earlier upload of ${file.name} (status ${state.status}); starting over`,
    );
    return { offset: 0, announced: true };
  }

  upload.resumeFromPreviousUpload(newest);
  const storedParts = newest.parallelUploadUrls?.length ?? 0;
  if (storedParts === 0) upload.options.parallelUploads = 1;
  if (state.kind === 'unknown') return { offset: 0, announced: false };

  let mode = '';
  if (storedParts > 0) mode = ` (${storedParts} parallel parts, as the earlier run)`;
  else if (wanted.parallel > 1)
    mode = ` (in one stream, as the earlier run; --no-resume starts over in ${wanted.parallel} parts)`;
  // A single upload already complete is reported at the end ("already complete on the server").
  const announce = state.offset < file.size || storedParts > 0;
  if (announce) say(`resuming ${file.name} at ${formatBytes(state.offset)} of ${formatBytes(file.size)}${mode}`);
  return { offset: state.offset, announced: announce };
}
