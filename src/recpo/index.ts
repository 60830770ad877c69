/** RecPO (R2ec): reasoning followed by an embedding decision over the labels. */
export { RecpoTrainer, LABEL_EMBEDDINGS_FILE, RECPO_RUN_FILE } from './trainer.js';
export { RECPO_DEFAULTS, RECPO_HELP, RECPO_PRESET, splitRecpoConfig, type AdvantageType, type RecpoOptions } from './config.js';
export { argmax, decisionHead, ndcgRankReward, similarityLogits, softmax, DEFAULT_SIMILARITY_TEMPERATURE, type DecisionOutput } from './decision.js';
export { bestOfGroups, decisionLoss, type DecisionLossResult, type DecisionTerm } from './decision-loss.js';
export { answerTagIds, decisionTokens, embedLabels, embedSequences, labelChatIds, locateDecision, type DecisionSite } from './embed.js';
export { similarityEvaluation, type SimilarityEvaluation } from './evaluate.js';
export { BUILTIN_LABEL_DESCRIPTIONS, labelDescriptions } from './label-descriptions.js';
export { recpoStep, type RecpoContext, type RecpoExample, type RecpoStepConfig, type RecpoStepResult } from './step.js';
