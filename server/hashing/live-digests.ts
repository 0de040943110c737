// The running digests of the uploads being written, kept in memory between PATCHes, and the one way
// to get the state that covers an upload's first `offset` bytes: from memory, from its saved file
// (caught up from the upload's bytes when behind), or fresh.
import fsp from 'node:fs/promises';
import type { DigestName } from '../../core/wire.ts';
import { DigestState, type RunningDigests } from './digest-state.ts';
import { canHashInline, InlineDigests } from './inline-digests.ts';
import { readChunks } from './read-chunks.ts';

/** Digest states kept in memory (the rest are on disk only). */
const LIVE_STATES = 256;

export interface LiveDigestsOptions {
  algorithms: readonly DigestName[];
  /** The upload's bytes. */
  filePath(id: string): string;
  /** Where its digest state is saved. */
  statePath(id: string): string;
  /** Mode of the saved states. */
  fileMode: number;
  /** Uploads being appended to right now: their states are in use, never evicted. */
  inUse(id: string): boolean;
  /** A failed save that is only a shortcut lost (a full disk), not an error. */
  isNoSpace(e: unknown): boolean;
}

export class LiveDigests {
  private readonly live = new Map<string, RunningDigests>();
  /**
   * With several instances on one store (REDIS_URL): the version of the bytes each live state ends
   * at. A live state whose version is no longer the shared one was overtaken by another instance's
   * writes: loaded again from the shared file.
   */
  private readonly versions = new Map<string, number>();

  constructor(private readonly options: LiveDigestsOptions) {}

  /** Drops the live state of an upload (its hashers back to the pool); returns it, released. */
  forget(id: string): RunningDigests | undefined {
    const live = this.live.get(id);
    live?.release();
    this.live.delete(id);
    this.versions.delete(id);
    return live;
  }

  /** Forgets the live state unless it was made at this version of the shared bytes. */
  trustOnlyAt(id: string, version: number): void {
    if (this.versions.get(id) !== version) this.forget(id);
  }

  setVersion(id: string, version: number): void {
    this.versions.set(id, version);
  }

  /**
   * Saves a state for the next PATCH. A state that cannot be saved (full disk) is only a shortcut
   * lost: the next PATCH hashes the gap since the last saved state from the file. Returns false then.
   */
  async save(id: string, state: RunningDigests): Promise<boolean> {
    return state.save(this.options.statePath(id), this.options.fileMode).then(
      () => true,
      (e: unknown) => {
        if (!this.options.isNoSpace(e)) throw e;
        return false;
      },
    );
  }

  /**
   * The digest state covering exactly `offset` bytes. A state behind the file (crash after a write,
   * before the save) is caught up by hashing the gap from disk; a missing, unreadable or ahead state
   * (file truncated by hand, configuration changed) is rebuilt from the file.
   */
  async at(id: string, offset: number, size?: number): Promise<RunningDigests> {
    const { algorithms } = this.options;
    const live = this.live.get(id);
    if (live && live.offset === offset) return live;
    this.forget(id);
    // Nothing written yet: the state is the fresh one, whatever the disk holds.
    if (offset === 0) {
      const fresh = canHashInline(algorithms, size)
        ? new InlineDigests(algorithms)
        : await DigestState.fresh(algorithms);
      this.keep(id, fresh);
      return fresh;
    }
    const statePath = this.options.statePath(id);
    let state = await DigestState.load(statePath, algorithms);
    if (state && state.offset > offset) {
      state.release();
      state = undefined;
    }
    if (!state) {
      // Missing, unusable or ahead of the file: whatever file is there says nothing true any more.
      await fsp.rm(statePath, { force: true });
      state = await DigestState.fresh(algorithms);
    }
    if (state.offset < offset) {
      const handle = await fsp.open(this.options.filePath(id), 'r');
      try {
        for await (const chunk of readChunks(handle, state.offset, offset)) await state.update(chunk);
      } finally {
        await handle.close();
      }
      // Only a shortcut for the next request: a full disk must not fail this one.
      await this.save(id, state);
    }
    this.keep(id, state);
    return state;
  }

  /** Keeps the states of recently written uploads in memory, so a PATCH does not read them back. */
  private keep(id: string, state: RunningDigests): void {
    this.live.set(id, state);
    if (this.live.size <= LIVE_STATES) return;
    // The oldest state not being written to goes (its hashers back to the pool; it is saved on disk).
    for (const candidate of this.live.keys()) {
      if (this.options.inUse(candidate) || candidate === id) continue;
      this.forget(candidate);
      return;
    }
  }
}
