// Hook settings read like tusd's flags; unknown events and unusable hooks are refused at start, by name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseHookAnswer } from '../hooks/answer.ts';
import { parseDuration } from '../core/parse.ts';
import { ConfigError, configFor, load } from '../server/config/config.ts';
import { startTuspass } from '../server/start/start.ts';
import { tmpDir } from './helpers/tmp.ts';

const problems = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.join('\n');
  }
  assert.fail('no ConfigError');
};

test('defaults follow tusd: events all but pre-finish and \
pre-terminate, 3 retries 1 s apart; complete-form built in', () => {
  const { config } = load({});
  assert.deepEqual(config.hooksEnabledEvents, [
    'pre-create',
    'post-create',
    'post-receive',
    'post-terminate',
    'post-finish',
  ]);
  assert.equal(config.hooksHttpRetry, 3);
  assert.equal(config.hooksHttpBackoffMs, 1000);
  assert.equal(config.hooksTimeoutMs, 15_000);
  assert.equal(config.hooksFailOpen, false);
  assert.deepEqual(config.hooksBuiltin, ['complete-form']);
  assert.deepEqual(config.hooksModules, []);
  assert.equal(config.hooksDir, undefined);
});

test('flags and environment variables, tusd spelling', () => {
  const { config, rest } = load(
    { HOOKS_HTTP: 'http://127.0.0.1:9/hooks', HOOKS_HTTP_BACKOFF: '500ms', HOOKS_BUILTIN: 'none' },
    [
      '--hooks-dir',
      'hooks.d',
      '--hooks-enabled-events',
      'pre-create, post-finish',
      '--hooks-module',
      'a.ts',
      '--hooks-module=b.ts,c.ts',
      '--hooks-fail-open',
      '--hooks-timeout',
      '1m30s',
      '--hooks-http-retry=0',
      '--progress-hooks-interval',
      '250ms',
    ],
  );
  assert.deepEqual(rest, []);
  assert.equal(config.hooksDir, path.resolve('hooks.d'));
  assert.equal(config.hooksHttp, 'http://127.0.0.1:9/hooks');
  assert.equal(config.hooksHttpBackoffMs, 500);
  assert.deepEqual(config.hooksEnabledEvents, ['pre-create', 'post-finish']);
  assert.deepEqual(config.hooksModules, ['a.ts', 'b.ts', 'c.ts']);
  assert.equal(config.hooksFailOpen, true);
  assert.equal(config.hooksTimeoutMs, 90_000);
  assert.equal(config.hooksHttpRetry, 0);
  assert.deepEqual(config.hooksBuiltin, []);
  assert.equal(config.progressHooksIntervalMs, 250);
  assert.equal(load({ HOOKS_FAIL_OPEN: 'no' }, ['--hooks-fail-open', 'true']).config.hooksFailOpen, true);
  assert.equal(load({}, ['--hooks-fail-open', 'false']).config.hooksFailOpen, false);
});

test('unknown event names, bad durations and bad URLs are refused by name, all at once', () => {
  const text = problems(() =>
    load({ HOOKS_HTTP_BACKOFF: 'soon' }, [
      '--hooks-enabled-events',
      'pre-create,pre-upload,post-finsh',
      '--hooks-http',
      'ftp://x',
      '--hooks-builtin',
      'complete-forms',
    ]),
  );
  assert.match(
    text,
    /--hooks-enabled-events: unknown hook event "pre-upload", "post-finsh"; known: pre-create, post-create/,
  );
  assert.match(text, /HOOKS_HTTP_BACKOFF: is not a duration/);
  assert.match(text, /--hooks-http: must be http or https/);
  assert.match(text, /--hooks-builtin: unknown built-in hook complete-forms/);
  assert.match(
    problems(() => load({ HOOKS_TIMEOUT: '0s' })),
    /HOOKS_TIMEOUT: must be longer than 0/,
  );
});

test('Go durations', () => {
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1h2m3s'), 3_723_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2'), 2000);
  assert.throws(() => parseDuration('1 s'));
  assert.throws(() => parseDuration('5x'));
});

test('a hooks dir that is not there, or a module that does not \
load or names an unknown event, stops the start', async (t) => {
  const dir = tmpDir(t);
  const start = (o: Parameters<typeof configFor>[0]) => startTuspass(configFor({ port: 0, ...o }), { log: () => {} });
  await assert.rejects(start({ dataDir: dir, hooksDir: path.join(dir, 'nope') }), (e: ConfigError) =>
    /HOOKS_DIR: .*nope is not a directory/.test(e.problems[0]!),
  );
  await assert.rejects(start({ dataDir: dir, hooksModules: [path.join(dir, 'missing.ts')] }), (e: ConfigError) =>
    /HOOKS_MODULE: cannot load .*missing\.ts/.test(e.problems[0]!),
  );
  const typo = path.join(dir, 'typo.mjs');
  fs.writeFileSync(typo, `export default { 'pre-upload': () => ({}) };\n`);
  await assert.rejects(start({ dataDir: dir, hooksModules: [typo] }), (e: ConfigError) =>
    /unknown hook event "pre-upload"/.test(e.problems[0]!),
  );
  const empty = path.join(dir, 'empty.mjs');
  fs.writeFileSync(empty, `export const x = 1;\n`);
  await assert.rejects(start({ dataDir: dir, hooksModules: [empty] }), (e: ConfigError) =>
    /exports no hook/.test(e.problems[0]!),
  );
});

test('hook answers are checked: tusd fields, types, empty text', () => {
  assert.deepEqual(parseHookAnswer(''), {});
  assert.deepEqual(parseHookAnswer('null'), {});
  assert.deepEqual(
    parseHookAnswer('{"RejectUpload":true,"HTTPResponse":{"StatusCode":400,"Body":"no","Header":{"X":"1"}},"Extra":1}'),
    { RejectUpload: true, HTTPResponse: { StatusCode: 400, Body: 'no', Header: { X: '1' } } },
  );
  assert.deepEqual(parseHookAnswer('{"ChangeFileInfo":{"ID":"","MetaData":{"a":"b"}}}'), {
    ChangeFileInfo: { MetaData: { a: 'b' } },
  });
  assert.throws(() => parseHookAnswer('ok'), /not JSON/);
  assert.throws(() => parseHookAnswer('{"RejectUpload":"yes"}'), /RejectUpload must be true or false/);
  assert.throws(() => parseHookAnswer('{"HTTPResponse":{"StatusCode":42}}'), /StatusCode/);
  assert.throws(() => parseHookAnswer('{"ChangeFileInfo":{"MetaData":{"a":1}}}'), /MetaData\.a must be a string/);
  assert.throws(() => parseHookAnswer('{"HTTPResponse":{"Header":{"X-A":"1\\r\\nSet-Cookie: x=1"}}}'), /line break/);
  assert.throws(() => parseHookAnswer('{"HTTPResponse":{"Header":{"X A":"1"}}}'), /no header name/);
});
