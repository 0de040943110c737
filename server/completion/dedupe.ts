// Duplicate uploads (DEDUPE=md5): the same owner sending the same file (name and md5) again gets the
// record of the first as the answer, and no second record. Off by default: the nginx upload module
// hands every upload to the app, and an app may want each one (a re-upload can be intended).
//
// What it does not do: the duplicate's bytes stay in the store like any finished upload's (they are
// removed with the upload server's own tools, e.g. `tuspass uploads list` and the store's expiry of
// finished uploads, not here): the form arrives while the upload server is still finishing that
// upload (pre-finish), and removing its file underneath would break the client's final PATCH.
// Two identical uploads finishing at the same moment may both be recorded (the look-up and the
// insert are not one transaction); the next one then answers the oldest.
import type { Catalog, NewUploadRecord, UploadRecord } from '../backends/catalog/catalog.ts';

const PAGE = 500;

export async function findDuplicate(catalog: Catalog, upload: NewUploadRecord): Promise<UploadRecord | undefined> {
  const owner = upload.owner ?? '';
  if (catalog.findDuplicate) return catalog.findDuplicate(owner, upload.name, upload.md5);
  let oldest: UploadRecord | undefined;
  for (let offset = 0; ; offset += PAGE) {
    const page = await catalog.list({ limit: PAGE, offset, owner });
    for (const r of page) if (r.md5 === upload.md5 && r.name === upload.name) oldest = r;
    if (page.length < PAGE) return oldest;
  }
}
