/** Names children never get, from the bot or from an agent's own variables. */
export const SECRET_NAME = /TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL/i;

/** The only variables a child inherits from the bot; everything else (tokens above all) stays behind. */
const INHERITED = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TERM', 'TZ', 'TMPDIR', 'COLORTERM',
  'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'XDG_DATA_HOME',
]);

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Allow-listed parent variables, the agent's own, then Chorus's markers; nothing named like a secret. */
export function buildChildEnv(
  parent: NodeJS.ProcessEnv,
  agentEnv: Record<string, string>,
  markers: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  // Names first, then only the values taken: each read of process.env is a call into the C++ environment.
  for (const name of Object.keys(parent)) {
    if (!(INHERITED.has(name) || name.startsWith('LC_')) || isSecretName(name)) continue;
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(agentEnv)) if (!isSecretName(name)) env[name] = value;
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  env.PYTHONUNBUFFERED = '1';
  for (const [name, value] of Object.entries(markers)) env[name] = value;
  return env;
}
