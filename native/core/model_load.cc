// Model<T>::load: config.json + safetensors -> weights, every tensor checked against the config.
#include <cstdlib>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "rrec/dtype.h"
#include "rrec/errors.h"
#include "rrec/model.h"

namespace rrec {

#define RREC_LORA_MODULE(name, parent) +1
static_assert(0
#include "rrec/options.def"
                  == kNumModules,
              "rrec/options.def lists one LoRA module per Module enumerator");
#undef RREC_LORA_MODULE

const char* moduleName(int m) {
#define RREC_LORA_MODULE(name, parent) #name,
  static const char* names[kNumModules] = {
#include "rrec/options.def"
  };
#undef RREC_LORA_MODULE
  return (m >= 0 && m < kNumModules) ? names[m] : "?";
}
const char* moduleParent(int m) {
#define RREC_LORA_MODULE(name, parent) #parent,
  static const char* parents[kNumModules] = {
#include "rrec/options.def"
  };
#undef RREC_LORA_MODULE
  return (m >= 0 && m < kNumModules) ? parents[m] : "?";
}
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

// Checks config.json against the tensors present before anything is allocated: a config that
// promises more layers (num_hidden_layers 1e8) or other widths than the weights hold is refused
// naming the field, instead of a bare std::bad_alloc or hundreds of MB allocated first.
void checkConfigAgainstTensors(const ModelConfig& c, const SafetensorsSet& files, const std::string& cfgPath) {
  // layers present: the highest N of "model.layers.N." + 1
  long long present = 0;
  const std::string pre = "model.layers.";
  for (const std::string& n : files.names()) {
    if (n.compare(0, pre.size(), pre) != 0) continue;
    size_t i = pre.size(), j = i;
    while (j < n.size() && j - i < 10 && n[j] >= '0' && n[j] <= '9') j++;
    if (j == i || j >= n.size() || n[j] != '.') continue;
    present = std::max(present, std::stoll(n.substr(i, j - i)) + 1);
  }
  if (c.layers != present)
    throw LoadError(cfgPath + ": field \"num_hidden_layers\" is " + std::to_string(c.layers) + " but the weights hold " +
                    std::to_string(present) + " layer(s) (model.layers.0 .. model.layers." + std::to_string(present - 1) + ")");
  const auto fieldShape = [&](const std::string& tensor, const std::vector<int64_t>& want, const std::string& fields) {
    const TensorView* tv = files.find(tensor);
    if (!tv) throw LoadError("model folder: tensor \"" + tensor + "\" is missing (config.json model_type " + c.modelType + " needs it)");
    if (tv->shape != want)
      throw LoadError(cfgPath + ": " + fields + " imply " + tensor + " of shape " + shapeStr(want) + " but " + tv->file + " holds " +
                      tv->shapeString());
  };
  const int64_t C = c.hidden;
  fieldShape("model.embed_tokens.weight", {c.vocab, C}, "fields \"vocab_size\" (" + std::to_string(c.vocab) + ") and \"hidden_size\" (" + std::to_string(C) + ")");
  if (present > 0) {
    const std::string p = "model.layers.0.";
    fieldShape(p + "self_attn.q_proj.weight", {static_cast<int64_t>(c.heads) * c.headDim, C},
               "fields \"num_attention_heads\" (" + std::to_string(c.heads) + "), head_dim (" + std::to_string(c.headDim) + ") and \"hidden_size\"");
    fieldShape(p + "self_attn.k_proj.weight", {static_cast<int64_t>(c.kvHeads) * c.headDim, C},
               "fields \"num_key_value_heads\" (" + std::to_string(c.kvHeads) + "), head_dim (" + std::to_string(c.headDim) + ") and \"hidden_size\"");
    fieldShape(p + "mlp.gate_proj.weight", {c.intermediate, C},
               "fields \"intermediate_size\" (" + std::to_string(c.intermediate) + ") and \"hidden_size\"");
  }
}

}  // namespace

template <typename T>
DeviceArray& Model<T>::newArray(DType t, int64_t n, bool zeroed) {
  owned_.emplace_back(*be_, t, n);
  if (zeroed) owned_.back().zero();
  return owned_.back();
}

template <typename T>
Weight Model<T>::matrix(const std::string& name, int rows, int cols, bool trainable, TensorRef* grad) {
  const TensorView* tv = files_->find(name);
  if (!tv) throw LoadError("model folder: tensor \"" + name + "\" is missing (config.json model_type " + cfg_.modelType + " needs it)");
  std::vector<int64_t> want = {rows, cols};
  if (tv->shape != want)
    throw LoadError(tv->file + ": tensor \"" + name + "\" has shape " + tv->shapeString() + " but config.json implies " + shapeStr(want));
  Weight m;
  m.rows = rows;
  m.cols = cols;
  const int64_t n = static_cast<int64_t>(rows) * cols;
  const bool viewable = !full_ && ((std::is_same_v<T, float> && (tv->dtype == DType::F32 || tv->dtype == DType::BF16)) ||
                                   (std::is_same_v<T, double> && tv->dtype == DType::F64));
  if (viewable) {
    // as stored: a view of the mapping where the backend reads host memory, else one upload
    const uint64_t bytes = static_cast<uint64_t>(n) * dtypeSize(tv->dtype);
    if (rrec_buffer* view = be_->canWrapHost() ? be_->wrapHost(tv->data, bytes) : nullptr) {
      views_.push_back(view);
      m.t = TensorRef{view, 0, tv->dtype};
    } else {
      DeviceArray& a = newArray(tv->dtype, n, false);
      be_->upload(a.ref(), tv->data, tv->dtype, static_cast<uint64_t>(n));
      m.t = a.ref();
    }
  } else {
    DeviceArray& a = newArray(dtypeOf<T>(), n, false);
    be_->upload(a.ref(), tv->data, tv->dtype, static_cast<uint64_t>(n));
    m.t = a.ref();
    if (trainable && full_) {
      const TensorRef value = m.t;
      const TensorRef g = newArray(dtypeOf<T>(), n, true).ref();
      if (grad) *grad = g;
      params_.push_back({name, want, value, g, n, TensorRef{}});
    }
  }
  return m;
}

template <typename T>
void Model<T>::vectorParam(const std::string& name, int size, DeviceArray& dst, TensorRef* grad) {
  const TensorView* tv = files_->find(name);
  if (!tv) throw LoadError("model folder: tensor \"" + name + "\" is missing (config.json model_type " + cfg_.modelType + " needs it)");
  std::vector<int64_t> want = {size};
  if (tv->shape != want)
    throw LoadError(tv->file + ": tensor \"" + name + "\" has shape " + tv->shapeString() + " but config.json implies " + shapeStr(want));
  dst.reset(*be_, dtypeOf<T>(), size);
  be_->upload(dst.ref(), tv->data, tv->dtype, static_cast<uint64_t>(size));
  if (full_) {
    const TensorRef g = newArray(dtypeOf<T>(), size, true).ref();
    if (grad) *grad = g;
    params_.push_back({name, want, dst.ref(), g, size, TensorRef{}});
  }
}

template <typename T>
void Model<T>::loadWeights() {
  const ModelConfig& c = cfg_;
  const int C = c.hidden, D = c.headDim, F = c.intermediate;
  const int outDims[kNumModules] = {c.heads * D, c.kvHeads * D, c.kvHeads * D, C, F, F, C};
  const int inDims[kNumModules] = {C, C, C, c.heads * D, C, C, F};
  const bool hasBias[kNumModules] = {c.qkvBias, c.qkvBias, c.qkvBias, c.oBias, c.mlpBias, c.mlpBias, c.mlpBias};

  embed_ = matrix("model.embed_tokens.weight", c.vocab, C, true, &gEmbed_);
  layers_.resize(static_cast<size_t>(c.layers));
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
}

template <typename T>
std::unique_ptr<Model<T>> Model<T>::load(const std::string& dir, bool fullFinetune, bool bf16Products,
                                         std::shared_ptr<Backend> backend) {
  std::unique_ptr<Model<T>> m(new Model<T>());
  m->full_ = fullFinetune;
  m->bf16Products_ = bf16Products;
  m->be_ = std::move(backend);
  if (!m->be_) throw ArgumentError("Model::load: no backend");
  if (!m->be_->supports(RREC_OP_MATMUL, dtypeOf<T>()))
    throw ArgumentError("the " + m->be_->label() + " backend does not compute with " + dtypeName(dtypeOf<T>()) + " activations" +
                        (std::is_same_v<T, double> ? " (float64 models run on the CPU only)" : ""));
  const std::string cfgPath = dir + "/config.json";
  m->cfg_ = parseModelConfig(readTextFile(cfgPath), cfgPath);
  m->files_ = SafetensorsSet::openDir(dir);
  checkConfigAgainstTensors(m->cfg_, *m->files_, cfgPath);
  m->loadWeights();
  for (Layer& L : m->layers_)
    for (Weight& w : L.w) w.bf16Products = bf16Products;
  m->lmHead_.bf16Products = bf16Products;  // the embedding lookup is no product
  if (fullFinetune && bf16Products) m->makeBf16Copies();
  if (!fullFinetune) m->packWeights();
  return m;
}

// Frozen decoder weights (every model but a full fine-tune, whose weights change each step) get
// the backend's packed forward form where it has one (the CPU's 48-column panels: the forward then
// streams W contiguously for every M and never packs per call; same bits as the unpacked M >= 32
// path). Costs one more copy of the decoder projections (bf16: 2 bytes per weight).
// RREC_PACKED_WEIGHTS=0 turns it off (read at each load).
template <typename T>
void Model<T>::packWeights() {
  if constexpr (std::is_same_v<T, float>) {
    const char* e = std::getenv("RREC_PACKED_WEIGHTS");
    if (e && e[0] == '0') return;
    if (!be_->supports(RREC_OP_PACK_WEIGHT, DType::F32)) return;
    for (Layer& L : layers_)
      for (Weight& w : L.w) {
        if (w.empty()) continue;
        uint64_t bytes = 0;
        rrec_pack_weight_args a{w.raw(), rrec_tensor{nullptr, 0, 0, 0}, &bytes};
        be_->run(RREC_OP_PACK_WEIGHT, a);
        if (bytes == 0) continue;
        const TensorRef dst = newArray(DType::U8, static_cast<int64_t>(bytes), false).ref();
        a.dst = dst.raw();
        be_->run(RREC_OP_PACK_WEIGHT, a);
        w.packed = dst;
        packedBytes_ += bytes;
      }
  }
}

// Full fine-tune keeps f32 master copies of the weights, which bf16 products cannot multiply
// (they read bf16 weights). With bf16 products on a backend that has them, each decoder projection
// gets a bf16 copy that its Weight points to (as a LoRA model multiplies the stored bf16 weights);
// AdamW and setParam keep the copy in step with the master (Param::bf16Copy). The embedding and
// the LM head stay f32. Elsewhere (no bf16 products on this device, an odd width, float64)
// nothing changes: bf16 products promise the f32 results where they cannot run.
template <typename T>
void Model<T>::makeBf16Copies() {
  if constexpr (std::is_same_v<T, float>) {
    if (!be_->describe().bf16Products) return;
    for (Layer& L : layers_)
      for (Weight& w : L.w) {
        if (w.t.dtype != DType::F32 || w.cols % 2 != 0) continue;
        auto it = std::find_if(params_.begin(), params_.end(),
                               [&](const Param& p) { return p.value.buf == w.t.buf && p.value.offset == w.t.offset; });
        if (it == params_.end()) continue;
        it->bf16Copy = newArray(DType::BF16, it->numel, false).ref();
        refreshBf16Copy(*be_, *it);
        w.t = it->bf16Copy;
      }
  }
}

void refreshBf16Copy(Backend& be, const Param& p) {
  if (p.bf16Copy.empty()) return;
  const rrec_cast_args a{p.bf16Copy.raw(), p.value.raw(), p.numel};
  be.run(RREC_OP_CAST, a);
}

template <typename T>
Model<T>::~Model() {
  for (rrec_buffer* v : views_) be_->release(v);
  // owned_ and the layers' arrays release themselves; files_ (the mappings) go last
  layers_.clear();
  owned_.clear();
  finalNorm_.free();
}

template <typename T>
void Model<T>::zeroGrad() {
  for (const Param& p : params_) be_->zero(p.grad, static_cast<uint64_t>(p.numel) * sizeof(T));
}

template class Model<float>;
template class Model<double>;

}  // namespace rrec
