/**
 * The trainer (GrpoTrainer) and its supporting pieces: configuration, model registry,
 * learning-rate schedules, data order, checkpoint folders, metrics logging, early stopping and the
 * best model, and loading a trained model back (loadTrainedModel) for evaluation and inference.
 */
export {
  BUILTIN_MODEL,
  CONFIG_GROUPS,
  LORA_TARGET_MODULES,
  REWARD_FUNC_NAMES,
  TINY_MODEL_SFT_EPOCHS,
  TRAIN_CONFIG_ALIASES,
  TRAIN_CONFIG_FIELDS,
  TrainConfigError,
  closeFieldNames,
  defaultRunName,
  kvMemoryBudgetBytes,
  modelSlug,
  parseMemoryBudget,
  resolveTrainConfig,
  runDir,
  trainConfigJsonSchema,
  type ConfigAlias,
  type ConfigGroup,
  type ConfigIssue,
  type ResolveOptions,
  type RewardFuncName,
  type ScaleRewards,
  type TrainConfig,
  type TrainConfigField,
  type TrainConfigInput,
} from './config.js';
export { configFromFlags, formatTrainConfigFields, trainFlagSpecs } from './train-flags.js';
export {
  DEFAULT_PATHS_FILE,
  ModelPathError,
  PATHS_ENV_VAR,
  loadModelPaths,
  lookupModel,
  missingModelFiles,
  parseModelPaths,
  resolveModelPath,
  type LoadModelPathsOptions,
  type LoadedModelPaths,
  type ModelPaths,
} from './paths.js';
export { createLrSchedule, learningRateAt, lrMultiplier, type LrScheduleConfig, type LrSchedulerType } from './schedule.js';
export {
  DataOrder,
  SplitMix64,
  batchesPerEpoch,
  epochPermutation,
  epochState,
  mix64,
  totalTrainingSteps,
  type DataBatch,
  type DataCursor,
  type DataOrderOptions,
  type DataOrderState,
} from './data-order.js';
export {
  CHECKPOINT_PREFIX,
  checkpointName,
  cleanStaleTemps,
  latestCheckpoint,
  listCheckpoints,
  readJsonFile,
  rotateCheckpoints,
  writeDirAtomic,
  writeFileSynced,
  writeJsonSynced,
  type CheckpointInfo,
  type WriteDirOptions,
} from './checkpoint-dir.js';
export {
  DEFAULT_PROGRESS_KEYS,
  MetricsLog,
  ProgressReporter,
  formatDuration,
  formatMetricValue,
  formatRecord,
  parseMetricsLog,
  readMetricsLog,
  type MetricsLogOptions,
  type ProgressOptions,
  type ProgressStream,
  type StepMetrics,
  type StepRecord,
} from './metrics-log.js';
export { REWARD_FUNCS, rewardFromConfig } from './reward-registry.js';
export { sftStep, sftCompletionText, microBatches, type SftExample, type SftStepOptions, type SftStepResult } from './sft.js';
export { grpoStepConfigFrom, MAX_TOKENS_PER_MICRO_BATCH } from './step-config.js';
export { grpoStep, rolloutSeed, type GrpoExample, type GrpoReward, type GrpoStepConfig, type GrpoStepResult, type RewardValue } from './grpo-step.js';
export { saveCheckpoint, loadCheckpoint, type TrainerState, type CheckpointParts } from './checkpoint.js';
export { GrpoTrainer, type AlgorithmContext, type FitOptions, type FitResult, type StopReason, type TrainExample, type TrainingAlgorithm } from './trainer.js';
export { createTrainer } from './create-trainer.js';
export { ensureBuiltinModel, TINY_QWEN2 } from './builtin-model.js';
export { EarlyStopping, type EarlyStoppingState, type Observation } from './early-stopping.js';
export { BEST_DIR, BEST_INFO_FILE, bestDir, readBestModelInfo, removeBestModel, saveBestModel, type BestModelInfo } from './best-model.js';
export { ADAPTER_DIR, MODEL_FILE, applyWeights, locateWeights, writeTrainedWeights, type WeightsLocation } from './trained-weights.js';
export { RUN_INFO_FILE, findRunInfo, readRunInfo, writeRunInfo, type RunInfo } from './run-info.js';
export { defaultDataDir, isArrowDataset, openDataset, packageRoot, type OpenDatasetOptions } from './dataset-source.js';
export { loadTrainedModel, type TrainedModel, type TrainedModelOptions } from './trained-model.js';
