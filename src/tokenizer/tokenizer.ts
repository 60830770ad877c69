/**
 * A Hugging Face tokenizer plus its chat template and special-token ids, as the rest of the
 * project sees it. Built by {@link loadTokenizer} (load.ts) from a model folder.
 *
 * Ids cross into the native addon as Int32Array, so `encode` returns one and `decode` accepts any
 * array-like of numbers.
 */
import { ChatTemplateError, type ApplyChatTemplateOptions, type ChatMessage, type ChatTemplate } from './chat-template.js';
import type { SpecialTokens } from './special-tokens.js';

export interface EncodeOptions {
  /**
   * Run the tokenizer's post-processor (default true, as in `transformers`): Gemma-2 prepends
   * `<bos>`, Qwen2.5 adds nothing. Pass false for text that already holds its special tokens, such
   * as a rendered chat template (which is what `apply_chat_template(tokenize=True)` does).
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, `<bos>`, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

/**
 * What Tokenizer uses of `@huggingface/tokenizers`' Tokenizer (load.ts passes one), written out so
 * that the public .d.ts do not import that package's types (they do not compile under a
 * consumer's `skipLibCheck: false` with NodeNext resolution).
 */
export interface TokenizerBackend {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

export interface TokenizerParts {
  modelDir: string;
  hf: TokenizerBackend;
  special: SpecialTokens;
  chatTemplate: ChatTemplate | null;
  /** config.json `model_type`, or null without a config.json. */
  modelType: string | null;
  /** config.json `vocab_size` (rows of the embedding matrix), or null. */
  modelVocabSize: number | null;
}

export class Tokenizer {
  /** The folder this was loaded from. */
  readonly modelDir: string;
  /** config.json `model_type` ("qwen2", "gemma2", ...), or null. */
  readonly modelType: string | null;
  /** Ids the tokenizer knows: the highest id (added tokens included) + 1. Qwen2.5: 151665. */
  readonly vocabSize: number;
  /**
   * config.json `vocab_size`, the model's embedding rows, or null. It can exceed `vocabSize`
   * (Qwen2.5: 151936, padded); ids in between decode to nothing.
   */
  readonly modelVocabSize: number | null;
  /** The token a finished chat answer ends with (Qwen2.5 `<|im_end|>`, Gemma-2 `<end_of_turn>`). */
  readonly eosTokenId: number;
  /** Every id that ends a generation, `eosTokenId` first. See special-tokens.ts for the rules. */
  readonly stopTokenIds: number[];
  readonly padTokenId: number;
  /** The id `encode(..., { addSpecialTokens: true })` may prepend; null when the tokenizer has none. */
  readonly bosTokenId: number | null;
  /**
   * Whether the chat template accepts a `system` message. False for Gemma-2, whose template raises
   * "System role not supported"; the prompter then folds the system text into the first user turn.
   * Found by rendering a system+user and a user-only conversation once at load.
   */
  readonly supportsSystemRole: boolean;
  /** The chat template, or null when the folder has none (applyChatTemplate then throws). */
  readonly chatTemplate: ChatTemplate | null;
  /**
   * The longest vocabulary entry in characters (byte-level entries count one per byte). A token
   * covers at most this many characters of text, so a text of c characters has at least
   * c / maxTokenChars tokens: a bound on prompt length known before tokenizing.
   */
  readonly maxTokenChars: number;

  private readonly hf: TokenizerBackend;

  constructor(parts: TokenizerParts) {
    this.modelDir = parts.modelDir;
    this.hf = parts.hf;
    this.modelType = parts.modelType;
    this.modelVocabSize = parts.modelVocabSize;
    this.chatTemplate = parts.chatTemplate;
    this.eosTokenId = parts.special.eosTokenId;
    this.stopTokenIds = [...parts.special.stopTokenIds];
    this.padTokenId = parts.special.padTokenId;
    this.bosTokenId = parts.special.bosTokenId;
    let maxId = -1;
    let longest = 1;
    for (const [tok, id] of parts.hf.get_vocab(true)) {
      if (tok === undefined) continue; // an unused id between used ones (a sparse vocabulary)
      if (id > maxId) maxId = id;
      if (tok.length > longest) longest = tok.length;
    }
    this.vocabSize = maxId + 1;
    this.maxTokenChars = longest;
    this.supportsSystemRole = probeSystemRole(parts.chatTemplate);
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const { ids } = this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    return Int32Array.from(ids);
  }

  /**
   * Ids the tokenizer does not know (negative, or past `vocabSize`, like the padded rows of
   * Qwen2.5's embedding) decode to nothing, as in the Rust tokenizers library.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.hf.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions): string {
    if (this.chatTemplate === null) {
      throw new ChatTemplateError(
        `${this.modelDir} has no chat template (tokenizer_config.json has no chat_template and no ` +
          'built-in template matches this tokenizer); pass loadTokenizer(dir, { chatTemplate })',
      );
    }
    return this.chatTemplate.render(messages, options);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }
}

function probeSystemRole(template: ChatTemplate | null): boolean {
  if (template === null) return false;
  const user: ChatMessage = { role: 'user', content: 'u' };
  try {
    template.render([{ role: 'system', content: 's' }, user], { addGenerationPrompt: true });
    return true;
  } catch {
    // Only a refusal of the system turn counts: the same template must render without it.
    template.render([user], { addGenerationPrompt: true });
    return false;
  }
}
