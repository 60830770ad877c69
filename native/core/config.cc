// config.json -> ModelConfig, with every field the math depends on checked.
#include "rrec/config.h"

#include <cmath>

#include "rrec/errors.h"
#include "rrec/json.h"

namespace rrec {

const char* archName(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Gemma2: return "gemma2";
  }
  return "?";
}

namespace {

struct Reader {
  const Json& root;
  const std::string& path;

  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw LoadError(path + ": field \"" + field + "\" " + msg);
  }
  const Json* get(const std::string& k) const {
    const Json* v = root.find(k);
    return (v && !v->isNull()) ? v : nullptr;
  }
  int positiveInt(const std::string& k) const {
    const Json* v = get(k);
    if (!v) fail(k, "is missing");
    if (!v->isInteger() || v->integer() <= 0 || v->integer() > (1LL << 31) - 1)
      fail(k, "must be a positive integer, got " + describe(*v));
    return static_cast<int>(v->integer());
  }
  int optInt(const std::string& k, int def) const { return get(k) ? positiveInt(k) : def; }
  double positiveNumber(const std::string& k, double def, bool required = false) const {
    const Json* v = get(k);
    if (!v) {
      if (required) fail(k, "is missing");
      return def;
    }
    if (!v->isNumber() || !(v->number() > 0) || !std::isfinite(v->number())) fail(k, "must be a positive number, got " + describe(*v));
    return v->number();
  }
  bool optBool(const std::string& k, bool def) const {
    const Json* v = get(k);
    if (!v) return def;
    if (!v->isBool()) fail(k, "must be true or false, got " + describe(*v));
    return v->boolean();
  }
  std::string optString(const std::string& k, const std::string& def) const {
    const Json* v = get(k);
    if (!v) return def;
    if (!v->isString()) fail(k, "must be a string, got " + describe(*v));
    return v->string();
  }
  static std::string describe(const Json& v) {
    if (v.isNumber()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", v.number());
      return buf;
    }
    if (v.isString()) return "\"" + v.string() + "\"";
    return Json::typeName(v.type());
  }
};

}  // namespace

ModelConfig parseModelConfig(const std::string& text, const std::string& path) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const JsonError& e) {
    throw LoadError(path + ": " + e.what());
  }
  if (!root.isObject()) throw LoadError(path + ": not a JSON object");
  Reader r{root, path};
  ModelConfig c;
  c.modelType = r.optString("model_type", "");
  if (c.modelType == "llama" || c.modelType == "mistral") c.arch = Arch::Llama;
  else if (c.modelType == "qwen2") c.arch = Arch::Qwen2;
  else if (c.modelType == "gemma2") c.arch = Arch::Gemma2;
  else if (c.modelType.empty()) r.fail("model_type", "is missing");
  else r.fail("model_type", "is \"" + c.modelType + "\"; supported architectures: llama, qwen2, gemma2");
  if (c.modelType == "mistral" && r.get("sliding_window"))
    r.fail("sliding_window", "is set: Mistral's sliding window is not supported");

  c.vocab = r.positiveInt("vocab_size");
  c.hidden = r.positiveInt("hidden_size");
  c.layers = r.positiveInt("num_hidden_layers");
  c.heads = r.positiveInt("num_attention_heads");
  c.kvHeads = r.optInt("num_key_value_heads", c.heads);
  c.intermediate = r.positiveInt("intermediate_size");
  c.maxPositions = r.optInt("max_position_embeddings", 4096);
  if (c.heads % c.kvHeads != 0)
    r.fail("num_key_value_heads", "(" + std::to_string(c.kvHeads) + ") must divide num_attention_heads (" + std::to_string(c.heads) + ")");
  if (r.get("head_dim")) c.headDim = r.positiveInt("head_dim");
  else {
    if (c.hidden % c.heads != 0)
      r.fail("hidden_size", "(" + std::to_string(c.hidden) + ") is not divisible by num_attention_heads and no head_dim is given");
    c.headDim = c.hidden / c.heads;
  }
  if (c.headDim % 2 != 0) r.fail("head_dim", "must be even for rotary embeddings, got " + std::to_string(c.headDim));
  c.rmsEps = r.positiveNumber("rms_norm_eps", 1e-6);
  c.ropeTheta = r.positiveNumber("rope_theta", 10000);
  if (const Json* rs = r.get("rope_scaling")) {
    std::string type;
    if (rs->isObject()) {
      const Json* t = rs->find("rope_type");
      if (!t) t = rs->find("type");
      if (t && t->isString()) type = t->string();
    }
    if (type != "default")
      r.fail("rope_scaling", "is set" + (type.empty() ? std::string() : " (type \"" + type + "\")") + ": RoPE scaling is not supported yet");
  }
  std::string dt = r.optString("torch_dtype", r.optString("dtype", "float32"));
  if (dt == "bfloat16") c.storedDtype = DType::BF16;
  else if (dt == "float16") c.storedDtype = DType::F16;
  else c.storedDtype = DType::F32;

  switch (c.arch) {
    case Arch::Llama: {
      c.tiedEmbeddings = r.optBool("tie_word_embeddings", false);
      bool bias = r.optBool("attention_bias", false);
      c.qkvBias = bias;
      c.oBias = bias;
      c.mlpBias = r.optBool("mlp_bias", false);
      std::string act = r.optString("hidden_act", "silu");
      if (act != "silu" && act != "swish") r.fail("hidden_act", "is \"" + act + "\"; llama supports silu");
      c.act = Activation::SiLU;
      c.attnScale = 1.0 / std::sqrt(static_cast<double>(c.headDim));
      break;
    }
    case Arch::Qwen2: {
      c.tiedEmbeddings = r.optBool("tie_word_embeddings", false);
      c.qkvBias = true;
      std::string act = r.optString("hidden_act", "silu");
      if (act != "silu" && act != "swish") r.fail("hidden_act", "is \"" + act + "\"; qwen2 supports silu");
      if (r.optBool("use_sliding_window", false)) r.fail("use_sliding_window", "is true: Qwen2 sliding-window attention is not supported");
      c.attnScale = 1.0 / std::sqrt(static_cast<double>(c.headDim));
      break;
    }
    case Arch::Gemma2: {
      c.tiedEmbeddings = r.optBool("tie_word_embeddings", true);
      c.normPlusOne = true;
      c.scaleEmbeddings = true;
      c.sandwichNorms = true;
      c.qkvBias = r.optBool("attention_bias", false);
      c.oBias = c.qkvBias;
      std::string act = r.optString("hidden_activation", r.optString("hidden_act", "gelu_pytorch_tanh"));
      if (act != "gelu_pytorch_tanh" && act != "gelu_tanh" && act != "gelu")
        r.fail("hidden_activation", "is \"" + act + "\"; gemma2 supports gelu_pytorch_tanh");
      // HF's "gelu" for Gemma is the tanh approximation too (GemmaConfig maps it).
      c.act = Activation::GeluTanh;
      double qpas = r.positiveNumber("query_pre_attn_scalar", static_cast<double>(c.headDim));
      c.attnScale = 1.0 / std::sqrt(qpas);
      c.attnSoftcap = r.get("attn_logit_softcapping") ? r.positiveNumber("attn_logit_softcapping", 0) : 0;
      c.finalSoftcap = r.get("final_logit_softcapping") ? r.positiveNumber("final_logit_softcapping", 0) : 0;
      c.slidingWindow = r.optInt("sliding_window", 0);
      break;
    }
  }
  return c;
}

}  // namespace rrec
