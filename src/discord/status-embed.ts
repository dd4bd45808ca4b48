import {
  ButtonStyle, ComponentType, TextInputStyle, type APIActionRowComponent, type APIButtonComponent, type APIEmbed, type APIModalInteractionResponseCallbackData,
} from 'discord.js';
import type { ProcessStatusView } from '../agents/front-end.js';
import { formatBytes, formatDuration, interactionTraits, readinessState } from '../agents/describe.js';
import type { ProcessRecord } from '../store/process-repo.js';
import { clip, fitLines } from './reply-format.js';

/** The body of a status message; plain API JSON, so two renders compare as strings. */
export interface StatusBody {
  content: string;
  embeds: APIEmbed[];
  components: APIActionRowComponent<APIButtonComponent>[];
}

export const KILL_BUTTON = 'proc:kill';
export const LOGS_BUTTON = 'proc:logs';
export const RESTART_BUTTON = 'proc:restart';
export const INPUT_BUTTON = 'proc:input';
/** The modal the Input button opens; its text field. */
export const INPUT_MODAL = 'proc:input-modal';
export const INPUT_MODAL_FIELD = 'text';
const TAIL_SHOWN = 15;
const TAIL_CHARS = 1_500;
const LINE_CHARS = 200;

export const STATE_COLOURS = {
  running: 0x3498db,
  starting: 0x3498db,
  success: 0x2ecc71,
  failure: 0xe74c3c,
  killed: 0xe67e22,
  lost: 0x95a5a6,
  restarting: 0xf1c40f,
  crashLoop: 0x992d22,
} as const;

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** A line of process output made safe to show inside a code block. */
export function cleanLine(text: string): string {
  return text.replace(ANSI, '').replace(CONTROL, '').replace(/```/g, '`\u200b``');
}

export function stateColour(record: Pick<ProcessRecord, 'status' | 'exitCode'>): number {
  switch (record.status) {
    case 'restarting':
      return STATE_COLOURS.restarting;
    case 'crash_loop':
      return STATE_COLOURS.crashLoop;
    case 'exited':
      return record.exitCode === 0 ? STATE_COLOURS.success : STATE_COLOURS.failure;
    case 'killed':
      return STATE_COLOURS.killed;
    case 'lost':
      return STATE_COLOURS.lost;
    default:
      return STATE_COLOURS.running;
  }
}

function stateText(record: ProcessRecord): string {
  switch (record.status) {
    case 'exited':
      return record.exitCode === 0 ? '✅ exited' : '❌ failed';
    case 'killed':
      return '🛑 killed';
    case 'lost':
      return '❔ lost';
    case 'restarting':
      return '🔄 restarting';
    case 'crash_loop':
      return '💥 crash loop';
    default: {
      if (record.pausedAt) return '⏸️ paused';
      const readiness = readinessState(record);
      if (readiness === 'starting') return '🟡 starting';
      if (readiness === 'ready') return '🟢 ready';
      if (readiness === 'not ready') return '🟠 not ready';
      return '🔵 running';
    }
  }
}

function endText(record: ProcessRecord): string {
  if (record.status === 'exited') return `code ${record.exitCode}`;
  if (record.status === 'killed') return `${record.signal ?? 'signal'}${record.stoppedBy ? ` by ${clip(record.stoppedBy, 40)}` : ''}`;
  if (record.status === 'lost') return clip(record.lostReason ?? 'no exit status', 200);
  if (record.status === 'restarting' || record.status === 'crash_loop') return record.exitCode === null ? 'none' : `code ${record.exitCode}`;
  return '—';
}

function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** Only what changes the picture goes in: uptime is a Discord timestamp, so time passing alone never needs an edit. */
export function renderStatus(view: ProcessStatusView): StatusBody {
  const { record } = view;
  const isRunning = record.status === 'running' || record.status === 'starting';
  const label = record.name ?? clip(record.command.replace(/\s+/g, ' '), 80);
  const fields: APIEmbed['fields'] = [
    { name: 'Command', value: `\`\`\`\n${clip(cleanLine(record.command), 1_000)}\n\`\`\`` },
    { name: 'PID', value: String(record.pid ?? '—'), inline: true },
    { name: 'State', value: stateText(record), inline: true },
    {
      name: isRunning ? 'Started' : 'Ran for',
      value: isRunning ? `<t:${seconds(record.startedAt)}:R>` : formatDuration(Date.parse(record.endedAt ?? record.startedAt) - Date.parse(record.startedAt)),
      inline: true,
    },
  ];
  if (!isRunning) {
    const name = record.status === 'killed' ? 'Signal' : record.status === 'lost' ? 'Reason' : 'Exit code';
    fields.push({ name, value: endText(record), inline: true });
  }
  if (record.restartCount > 0 || record.status === 'restarting') {
    fields.push({ name: 'Restarts', value: `${record.restartCount} (${record.restartStreak} in a row)`, inline: true });
  }
  if (record.status === 'restarting' && record.restartDueAt) fields.push({ name: 'Next run', value: `<t:${seconds(record.restartDueAt)}:R>`, inline: true });
  if (record.readyError) fields.push({ name: 'Not ready', value: clip(record.readyError, 1_000) });
  if (isRunning && view.usage) {
    fields.push({ name: 'CPU', value: `${Math.round(view.usage.cpuPercent)}%`, inline: true });
    const count = view.usage.processCount;
    fields.push({ name: 'Memory', value: `${formatBytes(view.usage.rssBytes)}${count > 1 ? ` (${count} processes)` : ''}`, inline: true });
  }
  if (isRunning && (record.isInteractive || record.pausedAt)) {
    fields.push({ name: 'Terminal', value: clip(interactionTraits(record).replace(/, last output.*$/, '') || '—', 200), inline: true });
  }
  if (view.hooks.length) fields.push({ name: 'Hooks', value: fitLines(view.hooks.map((hook) => `• ${clip(hook, 200)}`), 1_000) });

  const tail = view.tail.slice(-TAIL_SHOWN).map((line) => clip(cleanLine(line.text), LINE_CHARS) + (line.stream === 'stderr' ? '  ⟵ stderr' : ''));
  let shown = tail;
  while (shown.join('\n').length > TAIL_CHARS) shown = shown.slice(1);
  const description = shown.length ? `\`\`\`\n${shown.join('\n')}\n\`\`\`` : '*no output yet*';

  const embed: APIEmbed = {
    title: clip(`${label} · ${record.status === 'running' ? readinessState(record) ?? 'running' : record.status}`, 256),
    description,
    color: stateColour(record),
    fields,
    footer: { text: `agent ${record.agentName} · ${record.processType} · row #${record.id}` },
    timestamp: record.startedAt,
  };
  const buttons: APIButtonComponent[] = [];
  // Kill on a pending restart cancels it; Restart works in every state (a person's restart, not the policy's).
  if (isRunning || record.status === 'restarting') buttons.push({ type: ComponentType.Button, style: ButtonStyle.Danger, label: 'Kill', custom_id: `${KILL_BUTTON}:${record.id}` });
  if (isRunning && record.isInteractive) buttons.push({ type: ComponentType.Button, style: ButtonStyle.Primary, label: 'Input', custom_id: `${INPUT_BUTTON}:${record.id}` });
  buttons.push({ type: ComponentType.Button, style: ButtonStyle.Primary, label: 'Restart', custom_id: `${RESTART_BUTTON}:${record.id}` });
  buttons.push({ type: ComponentType.Button, style: ButtonStyle.Secondary, label: 'Logs', custom_id: `${LOGS_BUTTON}:${record.id}` });
  return { content: '', embeds: [embed], components: [{ type: ComponentType.ActionRow, components: buttons }] };
}

export type StatusButtonAction = 'kill' | 'logs' | 'input' | 'restart';

/** `proc:kill:12` → { action: 'kill', id: 12 }. */
export function parseStatusButton(customId: string): { action: StatusButtonAction; id: number } | undefined {
  const match = /^proc:(kill|logs|input|restart):(\d{1,15})$/.exec(customId);
  if (!match) return undefined;
  return { action: match[1] as StatusButtonAction, id: Number(match[2]) };
}

/** `proc:input-modal:12` → 12. */
export function parseInputModal(customId: string): number | undefined {
  const match = /^proc:input-modal:(\d{1,15})$/.exec(customId);
  return match ? Number(match[1]) : undefined;
}

/** The modal of the Input button: one paragraph, sent as typed lines. */
export function inputModal(record: ProcessRecord): APIModalInteractionResponseCallbackData {
  return {
    custom_id: `${INPUT_MODAL}:${record.id}`,
    title: clip(`Input to pid ${record.pid}`, 45),
    components: [{
      type: ComponentType.ActionRow,
      components: [{
        type: ComponentType.TextInput, custom_id: INPUT_MODAL_FIELD, label: 'Text (Enter is added)', style: TextInputStyle.Paragraph,
        required: true, max_length: 4000,
      }],
    }],
  };
}
