// The server subcommands of `tuspass` (push and hooks live with their own code).
export const SERVER_COMMANDS = {
  start: 'upload server + completion service + page on one port (embedded defaults)',
  'upload-server': 'the upload server alone (posts forms to COMPLETION_URL)',
  'completion-server': 'the completion service alone (COMPLETION_PORT)',
} as const;
export type ServerCommand = keyof typeof SERVER_COMMANDS;

export const isServerCommand = (name: string): name is ServerCommand => Object.hasOwn(SERVER_COMMANDS, name);
