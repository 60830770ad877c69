/**
 * rrec-emotion: GRPO training of language models that reason, then classify emotions.
 *
 * The public API, one module per concept: datasets (CSV -> Arrow), tokenizer + chat template,
 * prompter, reward parsing, GRPO math, and the native differentiable model.
 */
export * from './data/index.js';
export * from './tokenizer/index.js';
export * from './prompt/index.js';
export * from './reward/index.js';
export * from './grpo/index.js';
export * from './model/index.js';
export * from './engine/index.js';
export * from './train/index.js';
export * from './recpo/index.js';
export * from './eval/index.js';
export { exportModel, type ExportOptions, type ExportResult, type ExportFormat, type ExportDtype } from './export/index.js';
export { writeRunReport, readRunData, REPORT_FILE } from './report/index.js';
export { loadNative, NativeLoadError, type Device, type NativeBackendListing, type NativeDeviceInfo, type NativeFeatures, type NativeModelConfig } from './native.js';

import { loadNative } from './native.js';
import type { Device, NativeDeviceInfo, NativeFeatures } from './native.js';

/** What the native addon was built with and what this CPU offers. */
export function nativeFeatures(): NativeFeatures {
  return loadNative().features();
}

/**
 * Opens a device ('auto', 'cpu', 'cuda', 'cuda:N', ...) off the JS thread and says what it is;
 * rejects with an error that names the device and why it cannot be used.
 */
export function describeDevice(device: Device = 'auto'): Promise<NativeDeviceInfo> {
  return loadNative().describeDevice(device);
}
