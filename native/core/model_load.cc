// Model<T>::load: config.json + safetensors -> weights, every tensor checked against the config.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "cpu/matmul_kernels.h"
#include "rrec/dtype.h"
#include "rrec/errors.h"
#include "rrec/model.h"

namespace rrec {

const char* moduleName(int m) {
  static const char* names[kNumModules] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return (m >= 0 && m < kNumModules) ? names[m] : "?";
}
const char* moduleParent(int m) { return m <= kO ? "self_attn" : "mlp"; }
bool parseModuleName(const std::string& s, int* out) {
  for (int m = 0; m < kNumModules; m++) {
    if (s == moduleName(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

namespace {

std::string shapeStr(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

template <typename T>
T* Model<T>::newBuffer(size_t n) {
  owned_.push_back(std::make_unique<std::vector<T>>(n, T(0)));
  return owned_.back()->data();
}

template <typename T>
cpu::Mat Model<T>::matrix(const std::string& name, int rows, int cols, bool trainable, T** grad) {
  const TensorView* tv = files_->find(name);
  if (!tv) throw LoadError("model folder: tensor \"" + name + "\" is missing (config.json model_type " + cfg_.modelType + " needs it)");
  std::vector<int64_t> want = {rows, cols};
  if (tv->shape != want)
    throw LoadError(tv->file + ": tensor \"" + name + "\" has shape " + tv->shapeString() + " but config.json implies " + shapeStr(want));
  cpu::Mat m;
  m.rows = rows;
  m.cols = cols;
  const size_t n = static_cast<size_t>(rows) * cols;
  const bool viewable = !full_ && ((std::is_same_v<T, float> && (tv->dtype == DType::F32 || tv->dtype == DType::BF16)) ||
                                   (std::is_same_v<T, double> && tv->dtype == DType::F64));
  if (viewable) {
    m.data = tv->data;
    m.dtype = tv->dtype;
  } else {
    T* buf = newBuffer(n);
    for (size_t i = 0; i < n; i++) buf[i] = static_cast<T>(loadAsDouble(tv->data, tv->dtype, i));
    m.data = buf;
    m.dtype = sizeof(T) == 4 ? DType::F32 : DType::F64;
    if (trainable && full_) {
      T* g = newBuffer(n);
      if (grad) *grad = g;
      params_.push_back({name, want, buf, g, n});
    }
  }
  return m;
}

template <typename T>
void Model<T>::vectorParam(const std::string& name, int size, std::vector<T>& dst, T** grad) {
  const TensorView* tv = files_->find(name);
  if (!tv) throw LoadError("model folder: tensor \"" + name + "\" is missing (config.json model_type " + cfg_.modelType + " needs it)");
  std::vector<int64_t> want = {size};
  if (tv->shape != want)
    throw LoadError(tv->file + ": tensor \"" + name + "\" has shape " + tv->shapeString() + " but config.json implies " + shapeStr(want));
  dst.resize(static_cast<size_t>(size));
  for (int i = 0; i < size; i++) dst[i] = static_cast<T>(loadAsDouble(tv->data, tv->dtype, static_cast<size_t>(i)));
  if (full_) {
    T* g = newBuffer(static_cast<size_t>(size));
    if (grad) *grad = g;
    params_.push_back({name, want, dst.data(), g, static_cast<size_t>(size)});
  }
}

template <typename T>
void Model<T>::loadWeights(const std::string& dir) {
  const ModelConfig& c = cfg_;
  const int C = c.hidden, D = c.headDim, F = c.intermediate;
  const int outDims[kNumModules] = {c.heads * D, c.kvHeads * D, c.kvHeads * D, C, F, F, C};
  const int inDims[kNumModules] = {C, C, C, c.heads * D, C, C, F};
  const bool hasBias[kNumModules] = {c.qkvBias, c.qkvBias, c.qkvBias, c.oBias, c.mlpBias, c.mlpBias, c.mlpBias};

  embed_ = matrix("model.embed_tokens.weight", c.vocab, C, true, &gEmbed_);
  layers_.resize(static_cast<size_t>(c.layers));  // sized once: params_ point into these vectors
  for (int l = 0; l < c.layers; l++) {
    Layer& L = layers_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (int m = 0; m < kNumModules; m++) {
      const std::string base = p + moduleParent(m) + "." + moduleName(m);
      L.w[m] = matrix(base + ".weight", outDims[m], inDims[m], true, &L.gw[m]);
      if (hasBias[m]) vectorParam(base + ".bias", outDims[m], L.bias[m], &L.gbias[m]);
    }
    vectorParam(p + "input_layernorm.weight", C, L.attnNorm, &L.gAttnNorm);
    if (c.sandwichNorms) {
      vectorParam(p + "post_attention_layernorm.weight", C, L.attnPostNorm, &L.gAttnPostNorm);
      vectorParam(p + "pre_feedforward_layernorm.weight", C, L.mlpNorm, &L.gMlpNorm);
      vectorParam(p + "post_feedforward_layernorm.weight", C, L.mlpPostNorm, &L.gMlpPostNorm);
    } else {
      vectorParam(p + "post_attention_layernorm.weight", C, L.mlpNorm, &L.gMlpNorm);
    }
  }
  vectorParam("model.norm.weight", C, finalNorm_, &gFinalNorm_);
  if (c.tiedEmbeddings) {
    lmHead_ = embed_;
    gLmHead_ = gEmbed_;
  } else {
    lmHead_ = matrix("lm_head.weight", c.vocab, C, true, &gLmHead_);
  }
  // Gemma2 multiplies embeddings by sqrt(C) cast to the model dtype (HF: torch.tensor(C**0.5, dtype)).
  embedScale_ = T(1);
  if (c.scaleEmbeddings) {
    double s = std::sqrt(static_cast<double>(C));
    const TensorView* e = files_->find("model.embed_tokens.weight");
    if (e->dtype == DType::BF16) s = bf16ToF32(f32ToBf16(static_cast<float>(s)));
    embedScale_ = static_cast<T>(s);
  }
  (void)dir;
}

template <typename T>
std::unique_ptr<Model<T>> Model<T>::load(const std::string& dir, bool fullFinetune, bool bf16Products) {
  std::unique_ptr<Model<T>> m(new Model<T>());
  m->full_ = fullFinetune;
  m->bf16Products_ = bf16Products;
  const std::string cfgPath = dir + "/config.json";
  m->cfg_ = parseModelConfig(readTextFile(cfgPath), cfgPath);
  m->files_ = SafetensorsSet::openDir(dir);
  m->loadWeights(dir);
  for (Layer& L : m->layers_)
    for (cpu::Mat& w : L.w) w.bf16Products = bf16Products;
  m->lmHead_.bf16Products = bf16Products;  // the embedding lookup is no product
  if (fullFinetune && bf16Products) m->makeBf16Copies();
  return m;
}

// Full fine-tune keeps f32 master copies of the weights, which the bf16 kernels cannot multiply
// (they read bf16 weights). With bf16 products on a CPU that has them, each decoder projection
// gets a bf16 copy that its Mat points to (as a LoRA model multiplies the stored bf16 weights);
// AdamW and setParam keep the copy in step with the master (Param::bf16Copy). The embedding and
// the LM head stay f32. Elsewhere (no AVX512_BF16, an odd width, float64) nothing changes:
// bf16 products promise the f32 results where they cannot run.
template <typename T>
void Model<T>::makeBf16Copies() {
  if constexpr (std::is_same_v<T, float>) {
    if (!cpu::matmul_avx512_bf16()) return;
    for (Layer& L : layers_)
      for (cpu::Mat& w : L.w) {
        if (w.dtype != DType::F32 || w.cols % 2 != 0) continue;
        auto it = std::find_if(params_.begin(), params_.end(), [&](const Param<T>& p) { return p.value == w.data; });
        if (it == params_.end()) continue;
        ownedBf16_.push_back(std::make_unique<std::vector<uint16_t>>(it->numel));
        it->bf16Copy = ownedBf16_.back()->data();
        refreshBf16Copy(*it);
        w.data = it->bf16Copy;
        w.dtype = DType::BF16;
      }
  }
}

template <typename T>
void refreshBf16Copy(Param<T>& p) {
  if constexpr (std::is_same_v<T, float>) {
    if (!p.bf16Copy) return;
#pragma omp parallel for schedule(static) if (p.numel >= (size_t(1) << 16))
    for (size_t i = 0; i < p.numel; i++) p.bf16Copy[i] = f32ToBf16(p.value[i]);
  }
}
template void refreshBf16Copy<float>(Param<float>&);
template void refreshBf16Copy<double>(Param<double>&);

template <typename T>
Model<T>::~Model() = default;

template <typename T>
void Model<T>::zeroGrad() {
  for (Param<T>& p : params_) std::fill(p.grad, p.grad + p.numel, T(0));
}

template class Model<float>;
template class Model<double>;

}  // namespace rrec
