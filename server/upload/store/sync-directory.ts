// @tus/file-store 2.1.1's constructor ends with `this.checkOrCreateDirectory()`, which is
//
//     fs.mkdir(this.directory, { mode: MASK, recursive: true }, (error) => {
//       if (error && error.code !== IGNORED_MKDIR_ERROR) { throw error; }
//     });
//
// — a throw inside a callback, where nothing can catch it: the process dies. The method is private
// (declared so in its types, so a subclass cannot override it), it is not an option, and creating the
// directory before super() does not help: the asynchronous mkdir still runs, and fails when the
// directory goes meanwhile (measured: a store made and its directory removed in a test). So the one
// step is replaced on the subclass's prototype with a synchronous mkdir, whose failure surfaces in
// the constructor instead.
import type { FileStore } from '@tus/file-store';
import { makeDirectory } from '../../../core/make-directory.ts';

export function createDirectoryInConstructor(store: abstract new (...args: never[]) => FileStore): void {
  Object.defineProperty(store.prototype, 'checkOrCreateDirectory', {
    value(this: { directory: string }) {
      makeDirectory(this.directory);
    },
  });
}
