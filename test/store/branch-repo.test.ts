import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toChatMessage } from '../../src/agents/branch-runner.js';
import type { ToolCall } from '../../src/agents/llm-client.js';
import { BranchRepo } from '../../src/store/branch-repo.js';
import { openDatabase } from '../../src/store/database.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { makeTempHome } from '../support/temp-home.js';

describe('branch messages keep what their endpoint added', () => {
  it('stores the extra fields and the endpoint with an assistant message, across the migration that added them', () => {
    const path = join(makeTempHome(), 'chorus.db');
    const before = openDatabase(path, MIGRATIONS.slice(0, -1));
    const now = new Date().toISOString();
    before.prepare(`INSERT INTO branches (id, agent_name, status, origin, created_at, updated_at) VALUES ('b1', 'main', 'idle', 'message', ?, ?)`).run(now, now);
    before.prepare(`INSERT INTO branch_messages (branch_id, seq, role, content, created_at) VALUES ('b1', 1, 'assistant', 'old answer', ?)`).run(now);
    before.close();

    const db = openDatabase(path);
    const repo = new BranchRepo(db);
    const calls: ToolCall[] = [{ id: 'function-call-1', type: 'function', function: { name: 'list_processes', arguments: '{}' }, extra: { extra_content: { google: { thought_signature: 'c2ln' } } } }];
    repo.appendMessage('b1', {
      role: 'assistant', content: null, toolCallsJson: JSON.stringify(calls), toolCallId: null,
      extraJson: JSON.stringify({ reasoning_content: 'thinking' }), endpoint: 'http://x/v1/chat/completions m',
    });

    const [old, fresh] = repo.messages('b1').map(toChatMessage);
    expect(old).toEqual({ role: 'assistant', content: 'old answer' });
    expect(fresh).toEqual({ role: 'assistant', content: null, tool_calls: calls, extra: { reasoning_content: 'thinking' }, endpoint: 'http://x/v1/chat/completions m' });
    db.close();
  });
});
