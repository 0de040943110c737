// Who handles a finished upload's completion when several instances share the store (REDIS_URL):
// the instance whose write completes an upload claims its completion (claims.ts) until the store
// notes it handled (the file store's journal, the S3 store's record). A killed instance's claims end
// with their lease, and another instance's sweep takes the completion over (completion-sweep.ts).
// Both stores keep their claims here: one rule for when a completion is someone's.
import { errorText, type Log } from '../../../core/logger.ts';
import { completionClaim, type Claim, type Claims } from '../locker/claims.ts';

export class CompletionClaims {
  /** Set with several instances on one store (REDIS_URL); without, nothing is claimed. */
  claims: Claims | undefined;
  /** Completions claimed by this instance and not yet noted handled, by upload id. */
  private readonly held = new Map<string, Claim>();

  constructor(private readonly log: Log) {}

  /**
   * The write that completed `id` was made here, under the upload's lock: its completion is this
   * instance's to handle. Claimed before the lock goes, so no sweep finds it unclaimed meanwhile.
   */
  async completed(id: string): Promise<void> {
    if (!this.claims || this.held.has(id)) return;
    try {
      const claim = await this.claims.claim(completionClaim(id));
      if (claim) this.held.set(id, claim);
      else this.log(`upload ${id}: another instance holds its completion`, { level: 'warn' });
    } catch (e) {
      // Handled all the same: at worst another instance announces it too, and the service drops the repeat.
      this.log(`upload ${id}: its completion could not be claimed (${errorText(e)}); handling it unclaimed`, {
        level: 'warn',
      });
    }
  }

  /**
   * For the completion sweep: takes over a finished upload's completion that nobody handles — no
   * request holds its lock (one completing it claims the completion before it lets go), no instance
   * holds its completion, and the store, asked again now (`noted`), has not noted it handled. True
   * when this instance holds its completion now. Throws when Redis or the store cannot be reached.
   */
  async takeOver(id: string, noted: () => Promise<boolean>): Promise<boolean> {
    const claims = this.claims;
    if (!claims || this.held.has(id)) return false;
    const lock = await claims.claim(id);
    if (!lock) return false;
    try {
      const claim = await claims.claim(completionClaim(id));
      if (!claim) return false;
      let handled: boolean;
      try {
        handled = await noted();
      } catch (e) {
        await claim.release();
        throw e;
      }
      if (handled) {
        await claim.release();
        return false;
      }
      this.held.set(id, claim);
      return true;
    } finally {
      await lock.release();
    }
  }

  /** Announced (or gone): the completion claim goes. */
  async release(id: string): Promise<void> {
    const claim = this.held.get(id);
    this.held.delete(id);
    await claim?.release();
  }

  /** Lets every completion claim go (a stopping instance): another instance's sweep takes them over. */
  async releaseAll(): Promise<void> {
    for (const id of [...this.held.keys()]) await this.release(id);
  }
}
