/** Tokenizers, chat templates and special-token ids loaded from Hugging Face model folders. */
export { Tokenizer, type EncodeOptions, type DecodeOptions, type TokenizerParts } from './tokenizer.js';
export { loadTokenizer, TokenizerLoadError, type LoadTokenizerOptions } from './load.js';
export {
  ChatTemplate,
  ChatTemplateError,
  type ChatMessage,
  type ApplyChatTemplateOptions,
  type TemplateSpecialTokens,
} from './chat-template.js';
export { resolveSpecialTokens, type SpecialTokens, type SpecialTokenSources } from './special-tokens.js';
export { GEMMA2_CHAT_TEMPLATE } from './templates.js';
export { lenmlTokenizerDir, type LenmlTokenizerName } from './lenml.js';
