/** Prompts: the instruction wording, chat messages, and chat-templated token ids. */
export { ANSWER_TAG, ANSWER_OPEN, ANSWER_CLOSE, formatAnswer } from './answer.js';
export { DEFAULT_PROMPT_TEMPLATE, fillPromptTemplate, validateLabels } from './template.js';
export { buildPrompt, foldSystemIntoUser, type BuildPromptInput } from './build.js';
export {
  Prompter,
  type PrompterOptions,
  type PromptExample,
  type PromptTokenizer,
  type RenderedPrompt,
} from './prompter.js';
