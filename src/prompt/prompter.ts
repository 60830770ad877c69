/**
 * Prompter: example -> chat messages -> chat-templated prompt text -> token ids, for one
 * tokenizer. Pure and deterministic: the same example gives byte-identical text and ids (no dates,
 * no randomness; label order as given).
 *
 * Ids are `encode(prompt, { addSpecialTokens: false })`: the chat template already writes the
 * special tokens it wants (Gemma-2's starts with `<bos>`), so adding them again would double the
 * BOS. This is what `transformers`' `apply_chat_template(tokenize=True)` does.
 */
import type { ChatMessage, Tokenizer } from '../tokenizer/index.js';
import { buildPrompt, foldSystemIntoUser } from './build.js';
import { validateLabels } from './template.js';

/** What the prompter needs of a tokenizer. */
export type PromptTokenizer = Pick<Tokenizer, 'applyChatTemplate' | 'encode' | 'supportsSystemRole'>;

export interface PrompterOptions {
  /** Labels for examples that do not carry their own. */
  labels?: readonly string[];
  /** A system turn. Folded into the first user turn when the template refuses system roles. */
  systemPrompt?: string;
  /** A prompt template (see template.ts). */
  template?: string;
}

export interface PromptExample {
  text: string;
  /** Overrides the prompter's labels for this example. */
  labels?: readonly string[];
}

export interface RenderedPrompt {
  /** The messages given to the chat template (after any system folding). */
  messages: ChatMessage[];
  /** The chat-templated text, ending with the generation prompt. */
  prompt: string;
  /** Token ids of `prompt`. */
  ids: Int32Array;
}

export class Prompter {
  /** True when the system prompt is folded into the user turn for this tokenizer. */
  readonly foldsSystemPrompt: boolean;
  private readonly tokenizer: PromptTokenizer;
  private readonly options: PrompterOptions;

  constructor(tokenizer: PromptTokenizer, options: PrompterOptions = {}) {
    if (options.labels !== undefined) validateLabels(options.labels);
    this.tokenizer = tokenizer;
    this.options = { ...options, labels: options.labels ? [...options.labels] : undefined };
    this.foldsSystemPrompt = Boolean(options.systemPrompt) && !tokenizer.supportsSystemRole;
  }

  /** The chat messages for an example, folded for this tokenizer when needed. */
  messages(example: PromptExample): ChatMessage[] {
    const labels = example.labels ?? this.options.labels;
    if (labels === undefined) {
      throw new Error('Prompter: the example has no labels and the prompter was built without labels');
    }
    const messages = buildPrompt({
      text: example.text,
      labels,
      systemPrompt: this.options.systemPrompt,
      template: this.options.template,
    });
    return this.foldsSystemPrompt ? foldSystemIntoUser(messages) : messages;
  }

  render(example: PromptExample): RenderedPrompt {
    const messages = this.messages(example);
    const prompt = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    const ids = this.tokenizer.encode(prompt, { addSpecialTokens: false });
    return { messages, prompt, ids };
  }
}
