#!/usr/bin/env node
// The one entry point: TypeScript runs through tsx's loader, so there is no separate build for the server.
import { register } from 'tsx/esm/api';
register();
await import('../server/cli.ts');
