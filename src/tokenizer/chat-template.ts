/**
 * A compiled chat template: Hugging Face's Jinja `chat_template`, rendered with `@huggingface/jinja`.
 *
 * The variables passed mirror `transformers`' `apply_chat_template`: `messages`,
 * `add_generation_prompt`, and the tokenizer's special-token strings (`bos_token`, `eos_token`,
 * `pad_token`, `unk_token`; omitted when the tokenizer has none, so they render as empty text like
 * Python's missing keys). `raise_exception(msg)` is not passed by us: @huggingface/jinja >= 0.5
 * defines it as a global that throws `Error(msg)` and refuses a second declaration
 * ("Variable already declared: raise_exception"). Its message reaches the caller inside a
 * {@link ChatTemplateError} that names where the template came from.
 *
 * Rendering is deterministic for the templates this project uses (Qwen2.5, Gemma-2). A template
 * that calls `strftime_now` (Llama-3.x) would read the clock; none of ours do.
 */
import { Template } from '@huggingface/jinja';

/** One chat turn. Roles beyond these three are not used by this project. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ApplyChatTemplateOptions {
  /** Append the opening of an assistant turn (`<|im_start|>assistant\n`, `<start_of_turn>model\n`). */
  addGenerationPrompt: boolean;
}

/** Raised when a chat template cannot be parsed or fails to render. */
export class ChatTemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateError';
  }
}

/** Special-token strings a template may read. */
export interface TemplateSpecialTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ChatTemplate {
  /** The Jinja source. */
  readonly source: string;
  /** Where the source came from, for error messages: a file and field, an option, or a built-in. */
  readonly origin: string;
  private readonly template: Template;
  private readonly specialTokens: TemplateSpecialTokens;

  /** Parses `source` now so a broken template fails at load time, naming `origin`. */
  constructor(source: string, origin: string, specialTokens: TemplateSpecialTokens) {
    this.source = source;
    this.origin = origin;
    this.specialTokens = specialTokens;
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(`chat template from ${origin} does not parse: ${errorText(err)}`, {
        cause: err,
      });
    }
  }

  render(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions): string {
    const context: Record<string, unknown> = {
      // Plain objects: the template indexes them both as `message.role` and `message['role']`.
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: options.addGenerationPrompt,
    };
    for (const [key, value] of Object.entries(this.specialTokens)) {
      if (value !== undefined) context[key] = value;
    }
    let out: unknown;
    try {
      out = this.template.render(context);
    } catch (err) {
      throw new ChatTemplateError(
        `chat template from ${this.origin} failed to render ${messages.length} message(s) ` +
          `(roles: ${messages.map((m) => m.role).join(', ') || 'none'}): ${errorText(err)}`,
        { cause: err },
      );
    }
    if (typeof out !== 'string') {
      throw new ChatTemplateError(`chat template from ${this.origin} rendered ${typeof out}, not text`);
    }
    return out;
  }
}
