/** Rewards: parsing `<answer>...</answer>`, reward functions, their weighted sum, answer tallies. */
export {
  DEFAULT_SYNONYMS,
  LabelMatcher,
  mergeSynonyms,
  normalizeAnswerText,
  type LabelMatch,
  type LabelOptions,
  type SynonymMap,
} from './labels.js';
export {
  createAnswerParser,
  INVALID_REASONS,
  parseAnswer,
  type InvalidReason,
  type ParseOptions,
  type ParsedAnswer,
} from './parse.js';
export {
  combineRewards,
  correctnessReward,
  formatReward,
  goldIndex,
  isWellFormatted,
  makeCorrectnessReward,
  makeFormatReward,
  type CombinedReward,
  type CombinedRewardFn,
  type FormatOptions,
  type RewardExample,
  type RewardFn,
  type WeightedReward,
} from './rewards.js';
export { RewardTally, scoreCompletions, type ScoredBatch, type TallySummary } from './tally.js';
