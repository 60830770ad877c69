/** The sampling engine: paged KV cache, continuous batching, prefix sharing, per-request sampling. */
export {
  Engine,
  EngineRequestError,
  type EngineOptions,
  type EngineStats,
  type FinishReason,
  type GenerateOptions,
  type GenerateRequest,
  type GenerateResult,
  type GeneratedSample,
  type SamplingOptions,
  type StreamChunk,
} from './engine.js';
export { packTokenBytes, tokenByteTable } from './token-bytes.js';
