// The admin commands of `tuspass` (queue, uploads, doctor): read DATA_DIR and STORE_DIR directly,
// for a server that runs or not. Output for people, or --json for scripts; exit 0, 1 when a check
// or the asked change failed, 64 on a usage error.
import { ADMIN_EXIT, UsageError } from './output.ts';

export const ADMIN_COMMANDS = {
  'queue list': 'notices waiting to be delivered (id, kind, attempts, next try, last error, age)',
  'queue retry ID': 'make a queued notice due now (a running server tries it at once)',
  'queue drop ID': 'remove a queued notice, printing what it was',
  'uploads list': 'stored uploads, in STORE_DIR or S3_BUCKET (--unfinished: only those still receiving bytes)',
  doctor: 'check configuration, directories, free space or the bucket, catalog, secret and ports',
} as const;

export const isAdminCommand = (name: string) => name === 'queue' || name === 'uploads' || name === 'doctor';

export async function adminCommand(command: string, args: readonly string[]): Promise<number> {
  try {
    if (command === 'queue') return await (await import('./queue.ts')).queueCommand(args);
    if (command === 'uploads') return await (await import('./uploads.ts')).uploadsCommand(args);
    return await (await import('./doctor.ts')).doctorCommand(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(
      `tuspass ${command}: ${e.message}\nusage:\n${Object.entries(ADMIN_COMMANDS)
        .map(([c, d]) => `  tuspass ${c.padEnd(16)}${d}`)
        .join('\n')}\n  (each takes the server's options, e.g. --data-dir, and --json)\n`,
    );
    return ADMIN_EXIT.USAGE;
  }
}
