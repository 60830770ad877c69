/**
 * Chat messages for one example: an optional system turn, then the filled prompt template as the
 * user turn.
 */
import type { ChatMessage } from '../tokenizer/index.js';
import { DEFAULT_PROMPT_TEMPLATE, fillPromptTemplate } from './template.js';

export interface BuildPromptInput {
  /** The text to classify. */
  text: string;
  /** The allowed emotions, in the order the prompt lists them. */
  labels: readonly string[];
  /** A system turn; omitted when undefined or empty. */
  systemPrompt?: string;
  /** A prompt template (see template.ts); default DEFAULT_PROMPT_TEMPLATE. */
  template?: string;
}

export function buildPrompt(input: BuildPromptInput): ChatMessage[] {
  if (typeof input.text !== 'string') {
    throw new Error(`buildPrompt: text must be a string, got ${JSON.stringify(input.text)}`);
  }
  const user = fillPromptTemplate(input.template ?? DEFAULT_PROMPT_TEMPLATE, { text: input.text, labels: input.labels });
  const messages: ChatMessage[] = [];
  if (input.systemPrompt) messages.push({ role: 'system', content: input.systemPrompt });
  messages.push({ role: 'user', content: user });
  return messages;
}

/**
 * For chat templates without a system role (Gemma-2): the system text becomes the start of the
 * first user turn, separated by a blank line, which is how Google's Gemma docs suggest giving
 * system instructions. Messages without a leading system turn are returned unchanged (a copy).
 */
export function foldSystemIntoUser(messages: readonly ChatMessage[]): ChatMessage[] {
  const [first, second, ...rest] = messages;
  if (first?.role !== 'system') return messages.map((m) => ({ ...m }));
  if (second === undefined || second.role !== 'user') {
    throw new Error('foldSystemIntoUser: a system turn must be followed by a user turn to fold into');
  }
  return [{ role: 'user', content: `${first.content}\n\n${second.content}` }, ...rest.map((m) => ({ ...m }))];
}
