/**
 * GRPO in TypeScript: group advantages, the clipped surrogate + KL loss with its per-token
 * gradient dLoss/dlogp (what the native addon back-propagates), and TRL-named metrics.
 * Pure functions over typed arrays; the batch layout is documented in types.ts.
 */
export type {
  AdvantageVariant,
  Floats,
  GrpoBatch,
  GrpoLossConfig,
  GrpoLossMetrics,
  GrpoLossResult,
  GrpoLossResultF64,
  LossType,
  RolloutMetrics,
} from './types.js';
export {
  DEFAULT_ADVANTAGE_EPS,
  batchStdAdvantages,
  fracRewardZeroStd,
  groupAdvantages,
  groupStdAdvantages,
  leaveOneOutAdvantages,
  meanOnlyAdvantages,
} from './advantages.js';
export { grpoLoss, grpoLossF64 } from './loss.js';
export { countLossTokens } from './lossTokens.js';
export { rolloutMetrics, type RolloutMetricsInput } from './metrics.js';
export type { TokenLayout } from './validate.js';
