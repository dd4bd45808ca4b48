/** Each entry moves the schema from user_version N to N+1. Append only; never edit a shipped step. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE processes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER,
    pgid INTEGER,
    start_ticks INTEGER,
    boot_id TEXT,
    command TEXT NOT NULL,
    name TEXT,
    category TEXT,
    working_directory TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    process_type TEXT NOT NULL CHECK (process_type IN ('background', 'concurrent')),
    spawned_by_branch TEXT,
    run_dir TEXT NOT NULL,
    stdout_log TEXT NOT NULL,
    stderr_log TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('starting', 'running', 'exited', 'killed', 'lost')),
    exit_code INTEGER,
    signal TEXT,
    stop_requested_by TEXT,
    stopped_by TEXT,
    lost_reason TEXT,
    callbacks_json TEXT,
    context_json TEXT,
    model_for_hooks TEXT,
    hook_recursion_depth INTEGER NOT NULL DEFAULT 0,
    timeout_seconds INTEGER,
    discord_message_id TEXT,
    status_channel_id TEXT,
    stdout_offset INTEGER NOT NULL DEFAULT 0,
    stderr_offset INTEGER NOT NULL DEFAULT 0,
    stdout_rotated INTEGER NOT NULL DEFAULT 0,
    stderr_rotated INTEGER NOT NULL DEFAULT 0,
    restarted_from INTEGER REFERENCES processes(id)
  );
  CREATE INDEX processes_agent_status ON processes (agent_name, status);
  CREATE INDEX processes_pid ON processes (pid);
  CREATE INDEX processes_status ON processes (status);
  CREATE TABLE supervisor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    started_at TEXT NOT NULL
  );
  `,
];
