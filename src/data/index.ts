/**
 * The datasets module: raw CSV splits -> cleaned dataset in the HF `datasets` on-disk layout
 * (preprocess), and back as typed columns (loadDataset / loadSplit).
 */

export { cleanText } from './clean.js';
export { DatasetError, type DatasetErrorDetails } from './errors.js';
export { BUILTIN_DATASETS, datasetSpec, type DatasetSpec } from './spec.js';
export { readSplitCsv, type SplitRows } from './csv.js';
export { readLabelTree, parseLabelTree, type LabelEdge } from './labelTree.js';
export { checkDuplicates, findLeaks, rowsToKeep, type ConflictGroup, type DuplicateCheck, type DuplicateGroup, type LeakGroup } from './duplicates.js';
export {
  preprocess,
  SPLITS,
  LABEL_TREE_FILE,
  REPORT_FILE,
  type PreprocessOptions,
  type PreprocessReport,
  type ProgressEvent,
  type SplitName,
  type SplitReport,
} from './preprocess.js';
export { formatReport } from './formatReport.js';
export { DEFAULT_MAX_TEXT_LENGTH, limitTextLengths, type LongTextPolicy } from './text-limit.js';
export { loadDataset, loadSplit, type LoadedDataset, type LoadedSplit, type SplitExample, type TextVector } from './load.js';
export { COLUMNS, DATASET_DICT_FILE, DATASET_INFO_FILE, STATE_FILE, dataFileName, featuresJson } from './hfLayout.js';
