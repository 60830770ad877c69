/** Evaluation: classification metrics of gold vs predicted labels, and their text report. */
export {
  INVALID_PREDICTION,
  classificationMetrics,
  formatEvalReport,
  type ClassMetrics,
  type EvalInput,
  type EvalMetrics,
} from './metrics.js';
export { evaluate, type EvalExample, type EvaluateOptions, type EvaluateResult } from './run.js';
