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
  `
  CREATE TABLE hooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    process_id INTEGER NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    trigger_type TEXT NOT NULL CHECK (trigger_type IN ('on_exit', 'on_output_match', 'on_timeout')),
    action TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    max_fires INTEGER NOT NULL,
    fire_count INTEGER NOT NULL DEFAULT 0,
    -- The last output position a firing consumed, per stream, so lines read again after a crash never fire twice.
    seen_stdout_offset INTEGER NOT NULL DEFAULT 0,
    seen_stderr_offset INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );
  CREATE INDEX hooks_process ON hooks (process_id);
  CREATE TABLE hook_firings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
    process_id INTEGER NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    cause TEXT NOT NULL CHECK (cause IN ('output', 'exit', 'timeout')),
    stream TEXT,
    log_offset INTEGER,
    merged_count INTEGER NOT NULL DEFAULT 1,
    payload_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('gathering', 'pending', 'done', 'failed', 'refused')),
    due_at TEXT NOT NULL,
    result TEXT,
    created_at TEXT NOT NULL,
    done_at TEXT
  );
  CREATE INDEX hook_firings_hook ON hook_firings (hook_id);
  CREATE INDEX hook_firings_open ON hook_firings (status) WHERE status IN ('gathering', 'pending');
  `,
  `
  CREATE TABLE branches (
    id TEXT PRIMARY KEY,
    agent_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'idle', 'stopped')),
    origin TEXT NOT NULL CHECK (origin IN ('message', 'hook')),
    model TEXT,
    depth INTEGER NOT NULL DEFAULT 0,
    parent_process_id INTEGER REFERENCES processes(id) ON DELETE SET NULL,
    started_by TEXT,
    stopped_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX branches_agent ON branches (agent_name, status);
  CREATE TABLE branch_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    branch_id TEXT NOT NULL REFERENCES branches(id) ON DELETE CASCADE,
    -- NULL while queued for a branch in the middle of a step; numbered when the loop takes it, so a tool call and its
    -- results are never split by a message that arrived meanwhile.
    seq INTEGER,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content TEXT,
    tool_calls_json TEXT,
    tool_call_id TEXT,
    created_at TEXT NOT NULL
  );
  CREATE INDEX branch_messages_branch ON branch_messages (branch_id, seq);
  CREATE TABLE branch_posts (
    message_id TEXT PRIMARY KEY,
    branch_id TEXT NOT NULL REFERENCES branches(id) ON DELETE CASCADE,
    agent_name TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  `
  -- Widens the kinds and causes for foreground processes, restart policies and the supervision triggers. SQLite
  -- cannot alter a CHECK, so each table is rebuilt (migrate() turns foreign keys off around the steps and checks
  -- them after each one).
  CREATE TABLE processes_new (
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
    process_type TEXT NOT NULL CHECK (process_type IN ('background', 'concurrent', 'foreground')),
    spawned_by_branch TEXT,
    run_dir TEXT NOT NULL,
    stdout_log TEXT NOT NULL,
    stderr_log TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('starting', 'running', 'exited', 'killed', 'lost', 'restarting', 'crash_loop')),
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
  INSERT INTO processes_new SELECT * FROM processes;
  DELETE FROM sqlite_sequence WHERE name = 'processes_new';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'processes_new', seq FROM sqlite_sequence WHERE name = 'processes';
  DROP TABLE processes;
  ALTER TABLE processes_new RENAME TO processes;
  CREATE INDEX processes_agent_status ON processes (agent_name, status);
  CREATE INDEX processes_pid ON processes (pid);
  CREATE INDEX processes_status ON processes (status);
  CREATE TABLE hooks_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    process_id INTEGER NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    trigger_type TEXT NOT NULL CHECK (trigger_type IN ('on_exit', 'on_output_match', 'on_timeout', 'on_ready', 'on_ready_timeout', 'on_idle', 'on_resource')),
    action TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    max_fires INTEGER NOT NULL,
    fire_count INTEGER NOT NULL DEFAULT 0,
    -- The last output position a firing consumed, per stream, so lines read again after a crash never fire twice.
    seen_stdout_offset INTEGER NOT NULL DEFAULT 0,
    seen_stderr_offset INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );
  INSERT INTO hooks_new SELECT * FROM hooks;
  DELETE FROM sqlite_sequence WHERE name = 'hooks_new';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'hooks_new', seq FROM sqlite_sequence WHERE name = 'hooks';
  DROP TABLE hooks;
  ALTER TABLE hooks_new RENAME TO hooks;
  CREATE INDEX hooks_process ON hooks (process_id);
  CREATE TABLE hook_firings_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
    process_id INTEGER NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    cause TEXT NOT NULL CHECK (cause IN ('output', 'exit', 'timeout', 'ready', 'ready_timeout', 'idle', 'resource')),
    stream TEXT,
    log_offset INTEGER,
    merged_count INTEGER NOT NULL DEFAULT 1,
    payload_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('gathering', 'pending', 'done', 'failed', 'refused')),
    due_at TEXT NOT NULL,
    result TEXT,
    created_at TEXT NOT NULL,
    done_at TEXT
  );
  INSERT INTO hook_firings_new SELECT * FROM hook_firings;
  DELETE FROM sqlite_sequence WHERE name = 'hook_firings_new';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'hook_firings_new', seq FROM sqlite_sequence WHERE name = 'hook_firings';
  DROP TABLE hook_firings;
  ALTER TABLE hook_firings_new RENAME TO hook_firings;
  CREATE INDEX hook_firings_hook ON hook_firings (hook_id);
  CREATE INDEX hook_firings_open ON hook_firings (status) WHERE status IN ('gathering', 'pending');
  `,
  `
  -- The fields an LLM endpoint added to an assistant message (reasoning_content, reasoning_details, ...) as JSON, and
  -- that endpoint (base URL and model): they are sent back to it only.
  ALTER TABLE branch_messages ADD COLUMN extra_json TEXT;
  ALTER TABLE branch_messages ADD COLUMN endpoint TEXT;
  `,
  // Whether each process ran confined (bwrap) or not (none).
  `
  ALTER TABLE processes ADD COLUMN sandbox TEXT;
  `,
  `
  -- The spawn lease: the process that inserted a starting row, so a supervisor never judges a spawn still in progress.
  ALTER TABLE processes ADD COLUMN spawner_pid INTEGER;
  ALTER TABLE processes ADD COLUMN spawner_start_ticks INTEGER;
  ALTER TABLE processes ADD COLUMN spawner_boot_id TEXT;
  `,
  // Issue 12: interaction. Whether stdin is a FIFO and whether a terminal was given; a STOP that someone sent;
  // the last signal sent and by whom; when the last output line was read (stored with the offsets).
  `
  ALTER TABLE processes ADD COLUMN interactive INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE processes ADD COLUMN tty INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE processes ADD COLUMN paused_at TEXT;
  ALTER TABLE processes ADD COLUMN last_signal TEXT;
  ALTER TABLE processes ADD COLUMN last_signal_by TEXT;
  ALTER TABLE processes ADD COLUMN last_signal_at TEXT;
  ALTER TABLE processes ADD COLUMN last_output_at TEXT;
  `,
  `
  -- Supervision (issue 13): readiness, restart policies and the one logical handle across policy restarts.
  ALTER TABLE processes ADD COLUMN ready_json TEXT;
  ALTER TABLE processes ADD COLUMN ready_at TEXT;
  ALTER TABLE processes ADD COLUMN ready_error TEXT;
  ALTER TABLE processes ADD COLUMN restart_json TEXT;
  ALTER TABLE processes ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE processes ADD COLUMN restart_streak INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE processes ADD COLUMN restart_due_at TEXT;
  ALTER TABLE processes ADD COLUMN restart_requested_by TEXT;
  ALTER TABLE processes ADD COLUMN superseded_by INTEGER;
  CREATE INDEX processes_restarting ON processes (status) WHERE status = 'restarting';
  `,
  `
  -- The active processes (starting or running) of each agent, kept by triggers, so the process limit checked at every
  -- spawn reads one row instead of counting the agent's whole fleet. A later step that rebuilds \`processes\` drops
  -- these triggers with the old table and must create them again (test/store/active-counts.test.ts notices).
  CREATE TABLE agent_active_counts (agent_name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO agent_active_counts (agent_name, n)
    SELECT agent_name, COUNT(*) FROM processes WHERE status IN ('starting', 'running') GROUP BY agent_name;
  CREATE TRIGGER processes_active_insert AFTER INSERT ON processes WHEN NEW.status IN ('starting', 'running')
  BEGIN
    INSERT INTO agent_active_counts (agent_name, n) VALUES (NEW.agent_name, 1) ON CONFLICT (agent_name) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER processes_active_delete AFTER DELETE ON processes WHEN OLD.status IN ('starting', 'running')
  BEGIN
    UPDATE agent_active_counts SET n = n - 1 WHERE agent_name = OLD.agent_name;
  END;
  CREATE TRIGGER processes_active_update AFTER UPDATE OF status, agent_name ON processes
    WHEN (OLD.status IN ('starting', 'running')) != (NEW.status IN ('starting', 'running')) OR OLD.agent_name != NEW.agent_name
  BEGIN
    UPDATE agent_active_counts SET n = n - 1 WHERE agent_name = OLD.agent_name AND OLD.status IN ('starting', 'running');
    INSERT INTO agent_active_counts (agent_name, n) SELECT NEW.agent_name, 1 WHERE NEW.status IN ('starting', 'running')
      ON CONFLICT (agent_name) DO UPDATE SET n = n + 1;
  END;
  `,
  // Issue 14: a starting row has no pid yet, and its entry in the pid index went into the page of every other such
  // row, a write (two in the WAL) a spawn for nothing: only rows with a pid are indexed. `pid = ?` implies it.
  `
  DROP INDEX processes_pid;
  CREATE INDEX processes_pid ON processes (pid) WHERE pid IS NOT NULL;
  `,
];
