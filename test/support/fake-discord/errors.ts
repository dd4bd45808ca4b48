/** Discord API errors the fake serves, with Discord's own status, code and wording. */
export const DISCORD_ERRORS = {
  unauthorized: { status: 401, code: 0, message: '401: Unauthorized' },
  notFound: { status: 404, code: 0, message: '404: Not Found' },
  unknownChannel: { status: 404, code: 10003, message: 'Unknown Channel' },
  unknownGuild: { status: 404, code: 10004, message: 'Unknown Guild' },
  unknownMember: { status: 404, code: 10007, message: 'Unknown Member' },
  unknownMessage: { status: 404, code: 10008, message: 'Unknown Message' },
  unknownWebhook: { status: 404, code: 10015, message: 'Unknown Webhook' },
  unknownInteraction: { status: 404, code: 10062, message: 'Unknown interaction' },
  oldMessageEditCap: {
    status: 400,
    code: 30046,
    message: 'Maximum number of edits to messages older than 1 hour reached. Try again later.',
  },
  alreadyAcknowledged: { status: 400, code: 40060, message: 'Interaction has already been acknowledged.' },
  cannotEditOthersMessage: { status: 403, code: 50005, message: 'Cannot edit a message authored by another user' },
  emptyMessage: { status: 400, code: 50006, message: 'Cannot send an empty message' },
  invalidWebhookToken: { status: 401, code: 50027, message: 'Invalid Webhook Token' },
  invalidFormBody: { status: 400, code: 50035, message: 'Invalid Form Body' },
  invalidJson: { status: 400, code: 50109, message: 'The request body contains invalid JSON.' },
  internal: { status: 500, code: 0, message: '500: Internal Server Error' },
} as const;

export type DiscordErrorName = keyof typeof DISCORD_ERRORS;

/** One field-level problem in a 50035 Invalid Form Body answer; `path` is dotted, e.g. `embeds.0.title`. */
export interface FormProblem {
  path: string;
  code: string;
  message: string;
}

/** Nests problems the way Discord does: `{ embeds: { 0: { title: { _errors: [...] } } } }`. */
export function formErrors(problems: FormProblem[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const problem of problems) {
    let node = root;
    for (const key of problem.path.split('.')) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    const list = (node._errors ??= []) as Array<{ code: string; message: string }>;
    list.push({ code: problem.code, message: problem.message });
  }
  return root;
}

const LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footerText: 2048,
  authorName: 256,
  embedTotal: 6000,
  actionRows: 5,
  customId: 100,
  choices: 25,
  choiceName: 100,
} as const;

function tooLong(path: string, max: number): FormProblem {
  return { path, code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${max} or fewer in length.` };
}

function textLength(value: unknown): number {
  return typeof value === 'string' ? value.length : 0;
}

function asRecords(value: unknown): Array<Record<string, unknown>> {
  return Array.isArray(value) ? value.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null) : [];
}

/** Checks a message body against Discord's documented size limits. */
export function validateMessageBody(body: Record<string, unknown>): FormProblem[] {
  const problems: FormProblem[] = [];
  if (textLength(body.content) > LIMITS.content) problems.push(tooLong('content', LIMITS.content));
  const embeds = asRecords(body.embeds);
  if (embeds.length > LIMITS.embeds) problems.push(tooLong('embeds', LIMITS.embeds));
  let embedTotal = 0;
  embeds.forEach((embed, index) => {
    const at = `embeds.${index}`;
    const fields = asRecords(embed.fields);
    const footer = (embed.footer ?? {}) as Record<string, unknown>;
    const author = (embed.author ?? {}) as Record<string, unknown>;
    if (textLength(embed.title) > LIMITS.embedTitle) problems.push(tooLong(`${at}.title`, LIMITS.embedTitle));
    if (textLength(embed.description) > LIMITS.embedDescription) {
      problems.push(tooLong(`${at}.description`, LIMITS.embedDescription));
    }
    if (fields.length > LIMITS.embedFields) problems.push(tooLong(`${at}.fields`, LIMITS.embedFields));
    fields.forEach((field, fieldIndex) => {
      if (textLength(field.name) > LIMITS.fieldName) problems.push(tooLong(`${at}.fields.${fieldIndex}.name`, LIMITS.fieldName));
      if (textLength(field.value) > LIMITS.fieldValue) {
        problems.push(tooLong(`${at}.fields.${fieldIndex}.value`, LIMITS.fieldValue));
      }
      embedTotal += textLength(field.name) + textLength(field.value);
    });
    if (textLength(footer.text) > LIMITS.footerText) problems.push(tooLong(`${at}.footer.text`, LIMITS.footerText));
    if (textLength(author.name) > LIMITS.authorName) problems.push(tooLong(`${at}.author.name`, LIMITS.authorName));
    embedTotal += textLength(embed.title) + textLength(embed.description) + textLength(footer.text) + textLength(author.name);
  });
  if (embedTotal > LIMITS.embedTotal) {
    problems.push({ path: 'embeds', code: 'MAX_EMBED_SIZE_EXCEEDED', message: `Embed size exceeds maximum size of ${LIMITS.embedTotal}` });
  }
  const rows = asRecords(body.components);
  if (rows.length > LIMITS.actionRows) problems.push(tooLong('components', LIMITS.actionRows));
  rows.forEach((row, rowIndex) => {
    asRecords(row.components).forEach((component, index) => {
      if (textLength(component.custom_id) > LIMITS.customId) {
        problems.push(tooLong(`components.${rowIndex}.components.${index}.custom_id`, LIMITS.customId));
      }
    });
  });
  return problems;
}

/** Checks an autocomplete result (callback type 8). */
export function validateChoices(choices: unknown): FormProblem[] {
  const list = asRecords(choices);
  const problems: FormProblem[] = [];
  if (list.length > LIMITS.choices) problems.push(tooLong('data.choices', LIMITS.choices));
  list.forEach((choice, index) => {
    if (textLength(choice.name) > LIMITS.choiceName) problems.push(tooLong(`data.choices.${index}.name`, LIMITS.choiceName));
  });
  return problems;
}

/** True when a new message would show nothing (Discord answers 50006). */
export function isEmptyMessage(body: Record<string, unknown>, fileCount: number): boolean {
  const hasContent = typeof body.content === 'string' && body.content.length > 0;
  return !hasContent && asRecords(body.embeds).length === 0 && asRecords(body.components).length === 0
    && fileCount === 0 && !Array.isArray(body.sticker_ids) && body.poll === undefined;
}
