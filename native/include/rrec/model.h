// The differentiable causal LM: weights loaded from a Hugging Face folder, LoRA adapters, a
// forward pass over a packed ragged batch that returns log-probs of chosen target tokens, and the
// matching backward (vector-Jacobian product) into adapter or full-weight gradients.
//
// T is the compute type: float for real use (weights may stay bf16/f16 as stored), double for
// finite-difference tests (every weight converted to f64 at load).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "rrec/config.h"
#include "rrec/safetensors.h"

namespace rrec {

// The seven projection modules LoRA can adapt, in PEFT's names.
enum Module { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumModules };
const char* moduleName(int m);       // "q_proj", ...
const char* moduleParent(int m);     // "self_attn" or "mlp"
bool parseModuleName(const std::string& s, int* out);

// A trainable tensor: its PEFT/HF name, shape, value and gradient (both owned by the holder).
template <typename T>
struct Param {
  std::string name;
  std::vector<int64_t> shape;
  T* value = nullptr;
  T* grad = nullptr;
  size_t numel = 0;
  // Full fine-tune with bf16 products: a bf16 copy of value (round to nearest even) that the
  // projections multiply; whoever writes value (AdamW::step, setParam) refreshes it. Null otherwise.
  uint16_t* bf16Copy = nullptr;
};

// value -> bf16Copy for elements [0, numel), when the parameter has a copy
template <typename T>
void refreshBf16Copy(Param<T>& p);

struct LoraConfig {
  int rank = 8;
  double alpha = 16;
  double dropout = 0;
  bool rslora = false;       // scale alpha / sqrt(r) instead of alpha / r
  uint32_t targets = 0x7f;   // bit m set = adapt module m
  uint64_t seed = 0;         // initialisation of A (kaiming-uniform, as PEFT); B starts at zero
};

template <typename T>
class Model;

// LoRA adapter: per layer and target module, A [r, in] and B [out, r], y += scale * B A dropout(x).
template <typename T>
class Adapter {
 public:
  Adapter(const Model<T>& model, const LoraConfig& cfg);
  const LoraConfig& config() const { return cfg_; }
  T scale() const { return scale_; }
  bool has(int layer, int module) const { return (cfg_.targets >> module) & 1u; }
  T* A(int layer, int module) { return a_[layer * kNumModules + module].data(); }
  T* B(int layer, int module) { return b_[layer * kNumModules + module].data(); }
  T* gradA(int layer, int module) { return ga_[layer * kNumModules + module].data(); }
  T* gradB(int layer, int module) { return gb_[layer * kNumModules + module].data(); }
  int inFeatures(int module) const { return in_[module]; }
  int outFeatures(int module) const { return out_[module]; }
  std::vector<Param<T>>& params() { return params_; }
  void zeroGrad();

 private:
  LoraConfig cfg_;
  T scale_;
  int in_[kNumModules], out_[kNumModules];
  std::vector<std::vector<T>> a_, b_, ga_, gb_;
  std::vector<Param<T>> params_;
};

// Inputs of one forward pass. All arrays are borrowed for the duration of the call.
struct BatchInput {
  const int32_t* tokens = nullptr;      // [M] packed token ids of every sequence
  int M = 0;
  const int32_t* seqOffsets = nullptr;  // [S + 1], seqOffsets[0] = 0, seqOffsets[S] = M
  int S = 0;
  const int32_t* positions = nullptr;   // [M] rotary positions; null = index within the sequence
  const int32_t* targetRows = nullptr;  // [n] row whose logits predict the target
  const int32_t* targetTokens = nullptr;// [n] token whose log-prob is wanted
  int n = 0;
};

struct ForwardOptions {
  bool entropy = false;        // also return the entropy of each target row's distribution
  bool keepForBackward = true; // keep activations for backward()
  bool loraDropout = false;    // apply the adapter's dropout (training passes only)
  uint64_t dropoutSeed = 0;    // dropout masks are a pure function of (seed, layer, module, row, col)
  // Activation checkpointing: keep only each layer's input [M, C] and recompute the layer during
  // backward (one more forward of the decoder layers; the same values, so the same gradients).
  // Saves the attention probabilities (Hq L^2 per sequence) and ~10 [M, C|F] buffers per layer.
  bool recomputeActivations = false;
};

template <typename T>
struct ForwardState;  // activations kept for backward (defined in model.cc)

// One forward pass and (optionally) its backward.
template <typename T>
class ForwardPass {
 public:
  ~ForwardPass();
  const std::vector<double>& logp() const { return logp_; }
  const std::vector<double>& entropy() const { return entropy_; }
  bool canBackward() const { return state_ != nullptr; }
  Adapter<T>* adapter() const { return adapter_; }

 private:
  friend class Model<T>;
  std::vector<double> logp_, entropy_;
  Adapter<T>* adapter_ = nullptr;
  ForwardState<T>* state_ = nullptr;
};

template <typename T>
class Model {
 public:
  // Loads config.json + safetensors from `dir`. fullFinetune copies every weight into trainable
  // T buffers with gradients. bf16Products sets cpu::Mat::bf16Products on the decoder layers'
  // projections and the LM head (training and sampling alike, as a bf16 PyTorch model computes
  // its logits before the f32 log-softmax). Throws LoadError naming the file and tensor.
  static std::unique_ptr<Model> load(const std::string& dir, bool fullFinetune, bool bf16Products = false);
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  bool fullFinetune() const { return full_; }
  bool bf16Products() const { return bf16Products_; }
  // Trainable weights in full fine-tune mode (empty otherwise).
  std::vector<Param<T>>& params() { return params_; }
  void zeroGrad();

  // adapter == nullptr runs the base model (the GRPO reference). Throws ArgumentError on bad input.
  std::unique_ptr<ForwardPass<T>> forward(const BatchInput& in, Adapter<T>* adapter, const ForwardOptions& opt);
  // dlogp[n]: dLoss/dlogp of each target. Accumulates into the adapter's grads (LoRA) or the
  // model's (full fine-tune). Frees the pass's activations.
  void backward(ForwardPass<T>& pass, const double* dlogp, int n);

  // Serialises every native call on this model (forward/backward/optimizer/free).
  std::mutex& mutex() { return mutex_; }

  struct Layer {
    cpu::Mat w[kNumModules];
    std::vector<T> bias[kNumModules];  // empty when the module has no bias
    std::vector<T> attnNorm, attnPostNorm, mlpNorm, mlpPostNorm;  // post norms: Gemma2 only
    // full fine-tune gradients (null in LoRA mode or when the tensor does not exist)
    T* gw[kNumModules] = {};
    T* gbias[kNumModules] = {};
    T *gAttnNorm = nullptr, *gAttnPostNorm = nullptr, *gMlpNorm = nullptr, *gMlpPostNorm = nullptr;
  };
  const Layer& layer(int l) const { return layers_[l]; }
  // Read-only views for the sampling engine (engine.cc), which runs the same layers over a paged
  // KV cache: token embeddings [V, C], the output head [V, C] (== embedding() when tied), the final
  // norm weight [C] and the embedding multiplier (sqrt(C) for Gemma2, else 1).
  const cpu::Mat& embedding() const { return embed_; }
  const cpu::Mat& lmHead() const { return lmHead_; }
  const std::vector<T>& finalNorm() const { return finalNorm_; }
  T embedScale() const { return embedScale_; }

 private:
  friend class Adapter<T>;
  Model() = default;
  ModelConfig cfg_;
  bool full_ = false;
  bool bf16Products_ = false;
  std::unique_ptr<SafetensorsSet> files_;
  cpu::Mat embed_, lmHead_;
  std::vector<T> finalNorm_;
  std::vector<Layer> layers_;
  T *gEmbed_ = nullptr, *gLmHead_ = nullptr, *gFinalNorm_ = nullptr;
  T embedScale_ = 1;
  std::vector<std::unique_ptr<std::vector<T>>> owned_;  // converted weights and full fine-tune grads
  std::vector<std::unique_ptr<std::vector<uint16_t>>> ownedBf16_;  // Param::bf16Copy buffers
  void makeBf16Copies();
  std::vector<Param<T>> params_;
  std::mutex mutex_;

  void loadWeights(const std::string& dir);
  cpu::Mat matrix(const std::string& name, int rows, int cols, bool trainable, T** grad);
  void vectorParam(const std::string& name, int size, std::vector<T>& dst, T** grad);
  T* newBuffer(size_t n);
};

}  // namespace rrec
