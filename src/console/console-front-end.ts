import type { AgentConfig } from '../agents/agent-config.js';
import { cutLine, elideMiddle, readinessState, runTime } from '../agents/describe.js';
import type { FrontEnd, ProcessStatusView } from '../agents/front-end.js';
import { describeEnd } from '../process/process-manager.js';

/** The terminal as a front end: answers as `agent> text`, a background process's status as one line per state change. */
export class ConsoleFrontEnd implements FrontEnd {
  private nextId = 1;
  private readonly lastPosted = new Map<string, string>();
  private readonly shownStates = new Map<number, string>();

  constructor(private readonly write: (text: string) => void) {}

  async postMessage(agent: AgentConfig, text: string): Promise<string | null> {
    const id = `console-${this.nextId++}`;
    this.lastPosted.set(agent.name, id);
    const [first = '', ...rest] = stripFences(text).split('\n');
    this.write([`${agent.name}> ${first}`, ...rest.map((line) => `  ${line}`)].join('\n'));
    return id;
  }

  showProcessStatus(agent: AgentConfig, view: ProcessStatusView): void {
    const { record } = view;
    const readiness = readinessState(record);
    const state = view.isFinal ? `ended:${record.status}` : `${record.status}:${readiness ?? ''}`;
    if (this.shownStates.get(record.id) === state) return;
    this.shownStates.set(record.id, state);
    const label = record.name ? ` (${cutLine(record.name, 40)})` : '';
    const restarts = record.restartCount > 0 ? ` (restart ${record.restartCount})` : '';
    const what = view.isFinal ? `${describeEnd(record)} after ${runTime(record)}` : `${readiness ?? record.status}${restarts} in the background`;
    this.write(`[${agent.name}] pid ${record.pid}${label} ${what}: ${elideMiddle(record.command, 160)}`);
  }

  /** The last message an agent posted here: a typed line continues that conversation. */
  lastMessageId(agentName: string): string | undefined {
    return this.lastPosted.get(agentName);
  }

  forget(agentName: string): void {
    this.lastPosted.delete(agentName);
  }
}

/** Code fences are for Discord; on a terminal they are noise. */
export function stripFences(text: string): string {
  return text.split('\n').filter((line) => !/^```\w*$/.test(line.trim())).join('\n');
}
