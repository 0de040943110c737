// Claims: which instance on a shared store works on something — a finished upload's completion, the
// completion sweep. A claim is taken once or not at all (never waited for, never asks its holder to
// let go), lasts while its holder lives (a lease renewed in the background) and goes with it: a
// killed instance's claims end within REDIS_LOCK_TTL, and another instance takes the work over.
// RedisLocker implements them beside the upload locks, in the same key space: a claim named after an
// upload id is that upload's lock, taken only if free.

export interface Claim {
  release(): Promise<void>;
}

export interface Claims {
  /** The claim, or undefined when another holds it. Throws ERR_LOCK_UNAVAILABLE when the lock service cannot be
   * reached. */
  claim(name: string): Promise<Claim | undefined>;
}

/** The claim of an upload's completion: held from the write that completes it until its completion is in the
 * journal. */
export const completionClaim = (id: string) => `completion:${id}`;

/** The claim of the completion sweep: one instance sweeps at a time. (Upload ids never hold a colon.) */
export const SWEEP_CLAIM = 'sweep:completions';
