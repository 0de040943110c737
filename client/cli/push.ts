// `tuspass push FILE...`: checks the files, then uploads them one after the other and returns
// the exit code (client/cli/README.md). Dispatched from cli/main.ts.
import { EXIT } from './exit-codes.ts';
import { fingerprintFilePath, SavedUploads } from './fingerprint-store.ts';
import { checkLocalFiles } from './local-files.ts';
import { parsePushArgs, USAGE, UsageError } from './push-args.ts';
import { pushFile } from './push-file.ts';
import { tusClient } from './tus-client.ts';

export async function push(argv: string[]): Promise<number> {
  let options;
  try {
    options = parsePushArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`tuspass push: ${e.message}\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.OK;
  }

  const { files, problems } = checkLocalFiles(options.files);
  if (problems.length) {
    for (const p of problems) process.stderr.write(`tuspass push: cannot read ${p}\n`);
    return EXIT.LOCAL_FILE;
  }

  // tus-js-client before push's own Ctrl-C handler: its lock files' signal-exit handler must come
  // first, or, finding itself the last SIGINT listener once ours has run, it kills the process before
  // push can exit 130.
  tusClient();
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  const storage = new SavedUploads(fingerprintFilePath());
  try {
    const ctx = {
      options,
      storage,
      progressMode: options.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'lines',
      out: process.stdout,
      err: process.stderr,
      signal: interrupt.signal,
    } as const;
    let firstFailure: number = EXIT.OK;
    for (const file of files) {
      const code = await pushFile(file, ctx);
      if (code !== EXIT.OK && firstFailure === EXIT.OK) firstFailure = code;
      // Without a server or after Ctrl-C, the remaining files would fail the same way.
      if (code === EXIT.UNREACHABLE || code === EXIT.INTERRUPTED) return code;
    }
    return firstFailure;
  } finally {
    process.off('SIGINT', onSigint);
    await storage.settled();
  }
}
