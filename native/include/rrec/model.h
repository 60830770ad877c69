// The differentiable causal LM: weights loaded from a Hugging Face folder onto a backend's device,
// LoRA adapters, a forward pass over a packed ragged batch that returns log-probs of chosen target
// tokens, and the matching backward (vector-Jacobian product) into adapter or full-weight
// gradients. Every tensor lives on the model's backend (rrec/backend.h); this code only issues ops.
//
// T is the activation type: float for real use (weights may stay bf16/f16 as stored), double for
// finite-difference tests (every weight converted to f64 at load; the CPU backend only).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rrec/backend.h"
#include "rrec/config.h"
#include "rrec/safetensors.h"

namespace rrec {

// The seven projection modules LoRA can adapt, in PEFT's names (in rrec/options.def's order).
enum Module { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumModules };
const char* moduleName(int m);       // "q_proj", ...
const char* moduleParent(int m);     // "self_attn" or "mlp"
bool parseModuleName(const std::string& s, int* out);

// A trainable tensor on the model's device: its PEFT/HF name, shape, value and gradient (owned by
// the holder), of the model's activation dtype.
struct Param {
  std::string name;
  std::vector<int64_t> shape;
  TensorRef value, grad;
  int64_t numel = 0;
  // Full fine-tune with bf16 products: a bf16 copy of value (round to nearest even) that the
  // projections multiply; whoever writes value (AdamW::step, setParam) refreshes it. Empty otherwise.
  TensorRef bf16Copy;
};

// value -> bf16Copy for the whole parameter, when it has a copy
void refreshBf16Copy(Backend& be, const Param& p);

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
  Adapter(Model<T>& model, const LoraConfig& cfg);
  const LoraConfig& config() const { return cfg_; }
  T scale() const { return scale_; }
  bool has(int layer, int module) const { return (cfg_.targets >> module) & 1u; }
  TensorRef A(int layer, int module) const { return a_[slot(layer, module)].ref(); }
  TensorRef B(int layer, int module) const { return b_[slot(layer, module)].ref(); }
  TensorRef gradA(int layer, int module) const { return ga_[slot(layer, module)].ref(); }
  TensorRef gradB(int layer, int module) const { return gb_[slot(layer, module)].ref(); }
  int inFeatures(int module) const { return in_[module]; }
  int outFeatures(int module) const { return out_[module]; }
  std::vector<Param>& params() { return params_; }
  Backend& backend() const { return *be_; }
  void zeroGrad();

 private:
  static size_t slot(int layer, int module) { return static_cast<size_t>(layer) * kNumModules + module; }
  LoraConfig cfg_;
  T scale_;
  int in_[kNumModules], out_[kNumModules];
  std::shared_ptr<Backend> be_;
  std::vector<DeviceArray> a_, b_, ga_, gb_;  // [layers * kNumModules], empty where not adapted
  std::vector<Param> params_;
};

// Inputs of one forward pass. All arrays are borrowed (host memory) for the duration of the call.
struct BatchInput {
  const int32_t* tokens = nullptr;      // [M] packed token ids of every sequence
  int M = 0;
  const int32_t* seqOffsets = nullptr;  // [S + 1], seqOffsets[0] = 0, seqOffsets[S] = M
  int S = 0;
  const int32_t* positions = nullptr;   // [M] rotary positions; null = index within the sequence
  const int32_t* targetRows = nullptr;  // [n] row whose logits predict the target
  const int32_t* targetTokens = nullptr;// [n] token whose log-prob is wanted
  int n = 0;
  // Rows whose hidden state (the final norm's output, [C] each) the pass returns (RecPO's
  // embeddings); backward() then also takes dL/dhidden for them.
  const int32_t* hiddenRows = nullptr;  // [h]
  int h = 0;
};

// The options of one forward pass (fields, defaults and docs: rrec/options.def).
struct ForwardOptions {
#define RREC_FORWARD(kind, name, ctype, def, doc) ctype name = def;
#include "rrec/options.def"
#undef RREC_FORWARD
};

template <typename T>
struct ForwardState;  // activations kept for backward (model_forward.cc)

// One forward pass and (optionally) its backward.
template <typename T>
class ForwardPass {
 public:
  ~ForwardPass();
  const std::vector<double>& logp() const { return logp_; }
  const std::vector<double>& entropy() const { return entropy_; }
  // [h, C] final-norm hidden states at BatchInput::hiddenRows, row-major
  const std::vector<T>& hidden() const { return hidden_; }
  bool canBackward() const { return state_ != nullptr; }
  Adapter<T>* adapter() const { return adapter_; }

 private:
  friend class Model<T>;
  std::vector<double> logp_, entropy_;
  std::vector<T> hidden_;
  Adapter<T>* adapter_ = nullptr;
  ForwardState<T>* state_ = nullptr;
};

template <typename T>
class Model {
 public:
  // Loads config.json + safetensors from `dir` onto `backend`. fullFinetune copies every weight
  // into trainable T buffers with gradients. bf16Products sets Weight::bf16Products on the decoder
  // layers' projections and the LM head (training and sampling alike, as a bf16 PyTorch model
  // computes its logits before the f32 log-softmax). Throws LoadError naming the file and tensor.
  static std::unique_ptr<Model> load(const std::string& dir, bool fullFinetune, bool bf16Products,
                                     std::shared_ptr<Backend> backend);
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  bool fullFinetune() const { return full_; }
  bool bf16Products() const { return bf16Products_; }
  // Bytes of the packed forward copies of the decoder weights (0: none; see packWeights).
  uint64_t packedWeightBytes() const { return packedBytes_; }
  Backend& backend() const { return *be_; }
  const std::shared_ptr<Backend>& backendPtr() const { return be_; }
  // Trainable weights in full fine-tune mode (empty otherwise).
  std::vector<Param>& params() { return params_; }
  void zeroGrad();

  // adapter == nullptr runs the base model (the GRPO reference). Throws ArgumentError on bad input.
  std::unique_ptr<ForwardPass<T>> forward(const BatchInput& in, Adapter<T>* adapter, const ForwardOptions& opt);
  // dlogp[n]: dLoss/dlogp of each target; dhidden[h * C]: dLoss/dhidden of each hidden row (null
  // when the pass returned none, or to pass zeros). Accumulates into the adapter's grads (LoRA) or
  // the model's (full fine-tune). Frees the pass's activations.
  void backward(ForwardPass<T>& pass, const double* dlogp, int n, const double* dhidden = nullptr, int64_t dhiddenCount = 0);

  // Serialises every native call on this model (forward/backward/optimizer/free).
  std::mutex& mutex() { return mutex_; }

  // One decoder layer's weights on the device (shapes: C hidden, Hq/Hk heads of D, F intermediate).
  struct Layer {
    Weight w[kNumModules];             // q [Hq D, C], k/v [Hk D, C], o [C, Hq D], gate/up [F, C], down [C, F]
    DeviceArray bias[kNumModules];     // [out] of the module; empty when it has no bias
    DeviceArray attnNorm, mlpNorm;     // [C] input norms of the attention and MLP blocks
    DeviceArray attnPostNorm, mlpPostNorm;  // [C] Gemma2's post-norms (empty elsewhere)
    // full fine-tune gradients (empty in LoRA mode or when the tensor does not exist)
    TensorRef gw[kNumModules];
    TensorRef gbias[kNumModules];
    TensorRef gAttnNorm, gAttnPostNorm, gMlpNorm, gMlpPostNorm;
  };
  const Layer& layer(int l) const { return layers_[l]; }
  // The engine (engine_step.cc) runs the same layers over a paged KV cache: token embeddings
  // [V, C], the output head [V, C] (== embedding() when tied), the final norm weight [C] and the
  // embedding multiplier (sqrt(C) for Gemma2, else 1).
  const Weight& embedding() const { return embed_; }
  const Weight& lmHead() const { return lmHead_; }
  const DeviceArray& finalNorm() const { return finalNorm_; }
  T embedScale() const { return embedScale_; }
  // Full fine-tune gradients of the embedding, the LM head (the embedding's when tied) and the
  // final norm (empty in LoRA mode).
  const TensorRef& embeddingGrad() const { return gEmbed_; }
  const TensorRef& lmHeadGrad() const { return gLmHead_; }
  const TensorRef& finalNormGrad() const { return gFinalNorm_; }

 private:
  friend class Adapter<T>;
  Model() = default;
  ModelConfig cfg_;
  bool full_ = false;
  bool bf16Products_ = false;
  uint64_t packedBytes_ = 0;  // packWeights' copies
  std::shared_ptr<Backend> be_;
  std::unique_ptr<SafetensorsSet> files_;
  Weight embed_, lmHead_;
  DeviceArray finalNorm_;
  std::vector<Layer> layers_;
  TensorRef gEmbed_, gLmHead_, gFinalNorm_;
  T embedScale_ = 1;
  std::vector<DeviceArray> owned_;      // converted weights, full fine-tune grads, bf16 copies
  std::vector<rrec_buffer*> views_;     // zero-copy views of the memory-mapped files (released first)
  std::vector<Param> params_;
  std::mutex mutex_;

  void loadWeights();
  void makeBf16Copies();
  void packWeights();
  Weight matrix(const std::string& name, int rows, int cols, bool trainable, TensorRef* grad);
  void vectorParam(const std::string& name, int size, DeviceArray& dst, TensorRef* grad);
  DeviceArray& newArray(DType t, int64_t n, bool zeroed);
};

}  // namespace rrec
