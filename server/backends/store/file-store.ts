// The base of tuspass's store: @tus/file-store's FileStore, with the one private step of it that
// tuspass replaces. @tus/file-store 2.1.1's constructor ends with `this.checkOrCreateDirectory()`:
//
//     fs.mkdir(this.directory, { mode: MASK, recursive: true }, (error) => {
//       if (error && error.code !== IGNORED_MKDIR_ERROR) { throw error; }
//     });
//
// — a throw inside a callback, where nothing can catch it: the process dies. The method is private
// (declared so in its types, so a subclass cannot override it), it is not an option, and creating the
// directory before super() does not help: the asynchronous mkdir still runs, and fails when the
// directory goes meanwhile (measured: a store made and its directory removed in a test). So the one
// step is replaced on this class's prototype with a synchronous mkdir, whose failure surfaces in the
// constructor instead. test/store-base-contract.test.ts checks that the method is still there, still
// called by the constructor, and still unguarded.
import { FileStore } from '@tus/file-store';
import { makeDirectory } from '../../../core/make-directory.ts';

/**
 * The versions this base class was checked against (package.json must ask for these ranges; the
 * contract test fails otherwise): a new major may change what is relied on here, or the info files'
 * form (@tus/utils' FileKvStore, info-store.ts).
 */
export const STORE_BASE_VERSIONS = {
  '@tus/file-store': '^2.1.1',
  '@tus/utils': '^0.7.1',
} as const;

/** The name of FileStore's private directory step, replaced below. */
export const DIRECTORY_STEP = 'checkOrCreateDirectory';

export abstract class EngineFileStore extends FileStore {}

Object.defineProperty(EngineFileStore.prototype, DIRECTORY_STEP, {
  value(this: { directory: string }) {
    makeDirectory(this.directory);
  },
});
