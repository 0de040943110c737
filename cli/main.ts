// The `tuspass` command: parses the subcommand and configuration, starts what was asked, nothing else.
import { SERVER_COMMANDS, isServerCommand } from './commands.ts';
import { ConfigError, SETTINGS, load, settingHelp, unknownArgument } from '../server/config/config.ts';
import { EngineUnavailableError, EXIT_UNAVAILABLE } from '../server/backends/engine-wait.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { firstStopSignal } from '../server/start/signals.ts';
import { jsonProcessOutput, serverOutput, type ServerOutput } from './server-output.ts';
import { startTuspass } from '../server/start/start.ts';
import { ADMIN_COMMANDS, adminCommand, isAdminCommand } from '../server/admin/index.ts';

const USAGE = `usage: tuspass <command> [options]

commands:
${Object.entries(SERVER_COMMANDS)
  .map(([name, doc]) => `  ${name.padEnd(20)}${doc}`)
  .join('\n')}
  push FILE...        upload files (tuspass push --help)
  hooks test EVENT    send a sample EVENT payload to the configured hooks (tuspass hooks --help)
  token               print a bearer token signed with AUTH_JWT_SECRET (tuspass token --help)
${Object.entries(ADMIN_COMMANDS)
  .map(([name, doc]) => `  ${name.padEnd(20)}${doc}`)
  .join('\n')}

options (flag / environment variable):
${SETTINGS.map((s) => `  ${`${s.flag} / ${s.env}`.padEnd(44)} ${settingHelp(s)}`).join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  // Loaded on use: a server process has no need of tus-js-client and the rest (memory).
  if (command === 'push') return (await import('../client/cli/push.ts')).push(args);
  if (command === 'hooks') return (await import('./hooks-test.ts')).hooksCommand(args);
  if (command === 'token') return (await import('../server/auth/token-command.ts')).tokenCommand(args);
  if (command && isAdminCommand(command)) return adminCommand(command, args);
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (!isServerCommand(command)) {
    process.stderr.write(`tuspass: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  const { config, rest } = load(process.env, args);
  output = serverOutput(config.logFormat);
  if (config.logFormat === 'json') jsonProcessOutput(command);
  if (rest.length) throw new ConfigError(rest.map((a) => unknownArgument(a)));

  const running =
    command === 'completion-server'
      ? await startCompletionServer(config)
      : await startTuspass(config, { completion: command === 'start' });
  // Listening for the stop signals before saying the server is up: whatever waits for that line
  // and signals at once (a supervisor, a test) gets the graceful stop, never the default kill.
  const stopSignal = firstStopSignal(command, (line) => output!.fail(line, { event: 'server.exit' }));
  const what =
    command === 'completion-server'
      ? `completion service on ${running.url}/complete/`
      : `tus uploads on ${running.url}/files/, page on ${running.url}/`;
  output.say(`tuspass ${command}: ${what} (data in ${config.dataDir})`, {
    event: 'server.listening',
    url: running.url,
  });
  if ('completionUrl' in running)
    output.say(`tuspass ${command}: completion forms go to ${running.completionUrl}`, {
      event: 'server.completion_url',
      url: running.completionUrl,
    });

  const signal = await stopSignal;
  output.say(
    `tuspass ${command}: ${signal}, stopping: requests in flight get up to ${config.shutdownTimeoutMs} ms ` +
      '(SHUTDOWN_TIMEOUT), then uploads are cut with their bytes kept; a second signal exits at once',
    { event: 'server.stopping' },
  );
  await running.close(config.shutdownTimeoutMs);
  output.say(`tuspass ${command}: stopped`, { event: 'server.stopped' });
  return 0;
}

/** A server command's output, once its format is known (the configuration's, or what a refused one asked for). */
let output: ServerOutput | undefined;

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    // A wrong setting (78) and an engine that did not answer in STARTUP_TIMEOUT (69) are said in words.
    const refused = e instanceof ConfigError;
    const unavailable = e instanceof EngineUnavailableError;
    const last =
      output ??
      (refused && e.logFormat && isServerCommand(process.argv[2] ?? '')
        ? serverOutput(e.logFormat)
        : serverOutput('text'));
    if (refused) last.fail(`tuspass: ${e.message}`, { event: 'config.invalid', problems: e.problems });
    else if (unavailable) last.fail(`tuspass: ${e.message}`, { event: 'engine.unavailable' });
    else if (last.json) last.fail(`tuspass: ${e.message}`, { event: 'process.failed', stack: e.stack });
    else last.fail(`tuspass: ${e.stack ?? e.message}`);
    process.exit(refused ? 78 : unavailable ? EXIT_UNAVAILABLE : 1);
  },
);
