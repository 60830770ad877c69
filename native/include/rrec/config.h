// A causal LM's architecture, read from a Hugging Face config.json and checked for consistency.
#pragma once
#include <string>

#include "rrec/dtype.h"

namespace rrec {

enum class Arch { Llama, Qwen2, Gemma2 };
enum class Activation { SiLU, GeluTanh };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string modelType;     // config.json model_type, e.g. "qwen2"
  int vocab = 0;             // V
  int hidden = 0;            // C
  int layers = 0;            // L
  int heads = 0;             // Hq
  int kvHeads = 0;           // Hk (divides Hq: GQA)
  int headDim = 0;           // D (Gemma2: 256 while C/Hq = 288)
  int intermediate = 0;      // F
  int maxPositions = 0;
  double rmsEps = 1e-6;
  double ropeTheta = 10000;
  bool tiedEmbeddings = false;
  bool qkvBias = false;      // Qwen2: q/k/v projections have a bias
  bool oBias = false;        // Llama attention_bias also biases o_proj
  bool mlpBias = false;      // Llama mlp_bias
  Activation act = Activation::SiLU;
  // Gemma2 specifics
  bool normPlusOne = false;      // RMSNorm scales by (1 + w)
  bool scaleEmbeddings = false;  // embeddings times sqrt(C)
  bool sandwichNorms = false;    // post-attention and post-feedforward norms
  double attnScale = 0;          // multiplier of q.k (head_dim^-0.5, Gemma2 query_pre_attn_scalar^-0.5)
  double attnSoftcap = 0;        // 0 = none
  double finalSoftcap = 0;       // 0 = none
  int slidingWindow = 0;         // 0 = none; a query at i sees keys j with i - j < window on sliding layers
  DType storedDtype = DType::F32;  // config torch_dtype (informative)

  bool layerIsSliding(int layer) const { return slidingWindow > 0 && arch == Arch::Gemma2 && layer % 2 == 0; }
};

// Parses and validates; errors name `path` and the field. Throws LoadError.
ModelConfig parseModelConfig(const std::string& jsonText, const std::string& path);
const char* archName(Arch a);

}  // namespace rrec
