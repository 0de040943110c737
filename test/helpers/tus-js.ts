// tus-js-client as a page or Uppy runs it: default options (retries, chunk size, resuming), nothing
// but the endpoint, the metadata and the callbacks given.
import * as tus from 'tus-js-client';

export interface TusJsOutcome {
  /** The upload's URL (the last one, if the client had made more than one). */
  url: string;
  status: number;
  /** Tuspass-Completion of the last answer: delivered, pending, rejected. */
  completion: string | undefined;
}

export function tusJsUpload(endpoint: string, body: Buffer, name: string): Promise<TusJsOutcome> {
  return new Promise((resolve, reject) => {
    const upload: tus.Upload = new tus.Upload(body, {
      endpoint,
      metadata: { filename: name, name },
      onSuccess: ({ lastResponse }) =>
        resolve({
          url: upload.url!,
          status: lastResponse.getStatus(),
          completion: lastResponse.getHeader('Tuspass-Completion'),
        }),
      onError: reject,
    });
    upload.start();
  });
}
