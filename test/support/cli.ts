import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHORUS_BIN = join(import.meta.dirname, '..', '..', 'bin', 'chorus.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI (`node bin/chorus.js`, not npx, whose warnings would land on stderr) against a home, from inside
 * it (so no .env of the repository is read), with a minimal environment plus `env`.
 */
export function runCli(home: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CHORUS_HOME: home, ...options.env };
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [CHORUS_BIN, ...args], { cwd: home, env, timeout: options.timeoutMs ?? 15_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`chorus ${args.join(' ')} did not finish: ${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
          return;
        }
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      });
    // Nothing typed unless given: a verb that reads stdin sees its end at once.
    child.stdin?.end(options.input ?? '');
  });
}

/** Parses stdout as JSON, failing with what the CLI printed. */
export function parseJson<T = any>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}):\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

/** What a processes directory holds: each bucket's run directories (`20261202-0438/1234-…`), an empty bucket as `20261202-0438/`. */
function listRuns(processes: string): string[] {
  return readdirSync(processes, { withFileTypes: true }).flatMap((entry) => {
    if (!entry.isDirectory() || !/^\d{8}-\d{4}$/.test(entry.name)) return [entry.name];
    const runs = readdirSync(join(processes, entry.name)).map((run) => join(entry.name, run));
    return runs.length ? runs : [`${entry.name}/`];
  });
}

/** Every run directory under the home, across agents (and anything else left in a processes directory). */
export function listRunDirs(home: string): string[] {
  const agents = join(home, 'agents');
  let names: string[];
  try {
    names = readdirSync(agents);
  } catch {
    return [];
  }
  return names.flatMap((agent) => {
    try {
      return listRuns(join(agents, agent, 'processes')).map((run) => join(agent, run));
    } catch {
      return [];
    }
  });
}
