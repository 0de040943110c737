#!/usr/bin/env node
// The one entry point: runs the server bundle (bin/bundle.js says why a bundle), rebuilding it first
// when a source file is newer, so a checkout or an edit never runs stale code.
import { pathToFileURL } from 'node:url';
import { ensureBundle } from './bundle.js';

await import(pathToFileURL(await ensureBundle()).href);
