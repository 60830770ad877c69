// A tiny model end to end on a CUDA backend against the CPU backend, without Node: writes tiny
// random Qwen2 and Gemma2 checkpoints (HF layout, bf16 safetensors; Gemma2 with both soft-caps
// and a sliding window shorter than the sequence), loads each on the CPU and on the device,
// runs a LoRA forward (log-probs, entropy) and backward, and compares.
//   test_cuda_model [--device cuda-emu|cuda] [--dir DIR]    (exit 0: every check passed)
// Used by native/cuda/gpu-check.sh on a GPU machine (--device cuda); the npm test runs the same
// comparison on cuda-emu from JavaScript (test/native/cuda.test.ts).
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "rrec/backend_registry.h"
#include "rrec/model.h"
#include "rrec/safetensors.h"

using namespace rrec;

namespace {

struct Tiny {
  std::string type;
  int vocab = 300, hidden = 64, inter = 128, layers = 2, heads = 4, kv = 2, headDim = 16;
};

void writeModel(const std::string& dir, const Tiny& t) {
  mkdir(dir.c_str(), 0755);
  const bool gemma = t.type == "gemma2";
  std::ofstream cfg(dir + "/config.json");
  cfg << "{\"model_type\":\"" << t.type << "\",\"vocab_size\":" << t.vocab << ",\"hidden_size\":" << t.hidden
      << ",\"intermediate_size\":" << t.inter << ",\"num_hidden_layers\":" << t.layers << ",\"num_attention_heads\":" << t.heads
      << ",\"num_key_value_heads\":" << t.kv << ",\"head_dim\":" << t.headDim << ",\"max_position_embeddings\":512,\"rms_norm_eps\":1e-6"
      << ",\"rope_theta\":10000,\"torch_dtype\":\"bfloat16\",\"tie_word_embeddings\":" << (t.type == "llama" ? "false" : "true");
  if (gemma)
    cfg << ",\"hidden_activation\":\"gelu_pytorch_tanh\",\"query_pre_attn_scalar\":16,\"attn_logit_softcapping\":50.0"
        << ",\"final_logit_softcapping\":30.0,\"sliding_window\":4";
  else
    cfg << ",\"hidden_act\":\"silu\"";
  cfg << "}\n";
  cfg.close();
  std::mt19937 g(7);
  std::map<std::string, std::vector<float>> data;
  std::vector<TensorToWrite> ts;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {{"model.embed_tokens.weight", {t.vocab, t.hidden}}};
  const int q = t.heads * t.headDim, kvw = t.kv * t.headDim;
  for (int l = 0; l < t.layers; l++) {
    const std::string p = "model.layers." + std::to_string(l);
    shapes.push_back({p + ".self_attn.q_proj.weight", {q, t.hidden}});
    shapes.push_back({p + ".self_attn.k_proj.weight", {kvw, t.hidden}});
    shapes.push_back({p + ".self_attn.v_proj.weight", {kvw, t.hidden}});
    if (t.type == "qwen2") {
      shapes.push_back({p + ".self_attn.q_proj.bias", {q}});
      shapes.push_back({p + ".self_attn.k_proj.bias", {kvw}});
      shapes.push_back({p + ".self_attn.v_proj.bias", {kvw}});
    }
    shapes.push_back({p + ".self_attn.o_proj.weight", {t.hidden, q}});
    shapes.push_back({p + ".mlp.gate_proj.weight", {t.inter, t.hidden}});
    shapes.push_back({p + ".mlp.up_proj.weight", {t.inter, t.hidden}});
    shapes.push_back({p + ".mlp.down_proj.weight", {t.hidden, t.inter}});
    shapes.push_back({p + ".input_layernorm.weight", {t.hidden}});
    shapes.push_back({p + ".post_attention_layernorm.weight", {t.hidden}});
    if (gemma) {
      shapes.push_back({p + ".pre_feedforward_layernorm.weight", {t.hidden}});
      shapes.push_back({p + ".post_feedforward_layernorm.weight", {t.hidden}});
    }
  }
  shapes.push_back({"model.norm.weight", {t.hidden}});
  if (t.type == "llama") shapes.push_back({"lm_head.weight", {t.vocab, t.hidden}});
  for (auto& s : shapes) {
    int64_t n = 1;
    for (int64_t d : s.second) n *= d;
    std::vector<float>& v = data[s.first];
    v.resize(n);
    const bool norm = s.first.find("norm") != std::string::npos;
    const double fanIn = s.second.size() == 2 ? double(s.second[1]) : double(s.second[0]);
    std::uniform_real_distribution<float> u(-1, 1);
    for (float& x : v) x = norm ? (gemma ? 0.1f * u(g) : 1.0f + 0.1f * u(g)) : float(1.5 * u(g) / std::sqrt(fanIn));
    ts.push_back({s.first, s.second, v.data()});
  }
  writeSafetensors(dir + "/model.safetensors", ts, DType::BF16, {{"format", "pt"}});
}

int failures = 0, passes = 0;
void check(const std::string& what, double err, double tol) {
  const bool ok = std::isfinite(err) && err <= tol;
  (ok ? passes : failures)++;
  std::printf("%s %-60s err %.3g (tol %.3g)\n", ok ? "ok  " : "FAIL", what.c_str(), err, tol);
}

struct Result {
  std::vector<double> logp, entropy;
  std::vector<std::vector<double>> grads;
  double seconds = 0;
};

Result run(const std::string& dir, const std::string& device, bool bf16Products, bool full = false) {
  auto be = openDevice(device);
  auto model = Model<float>::load(dir, full, bf16Products, be);
  LoraConfig lc;
  lc.rank = 4;
  lc.dropout = 0.1;
  lc.seed = 9;
  Adapter<float> ad(*model, lc);
  // B starts at zero: give it values so every gradient path is non-trivial
  for (Param& p : ad.params())
    if (p.name.find("lora_B") != std::string::npos) {
      std::vector<double> v(p.numel);
      for (int64_t i = 0; i < p.numel; i++) v[i] = std::sin(double(i)) * 0.1;
      be->upload(p.value, v.data(), DType::F64, p.numel);
    }
  std::vector<int32_t> tokens = {3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 2, 4, 6, 8, 10};
  std::vector<int32_t> offsets = {0, 11, 16}, rows, targets;
  for (int s = 0; s < 2; s++)
    for (int i = offsets[s] + 1; i < offsets[s + 1]; i++) {  // row i - 1 predicts token i
      rows.push_back(i - 1);
      targets.push_back(tokens[i]);
    }
  BatchInput in;
  in.tokens = tokens.data();
  in.M = static_cast<int>(tokens.size());
  in.seqOffsets = offsets.data();
  in.S = 2;
  in.targetRows = rows.data();
  in.targetTokens = targets.data();
  in.n = static_cast<int>(rows.size());
  ForwardOptions opt;
  opt.entropy = true;
  opt.loraDropout = !full;
  const auto t0 = std::chrono::steady_clock::now();
  auto pass = model->forward(in, full ? nullptr : &ad, opt);
  std::vector<double> dl(in.n);
  for (int i = 0; i < in.n; i++) dl[i] = std::cos(double(i));
  if (full)
    for (Param& p : model->params()) be->zero(p.grad, p.numel * sizeof(float));
  else
    ad.zeroGrad();
  model->backward(*pass, dl.data(), in.n);
  Result r;
  r.logp = pass->logp();
  r.entropy = pass->entropy();
  for (Param& p : full ? model->params() : ad.params()) {
    std::vector<double> g(p.numel);
    be->download(g.data(), DType::F64, p.grad, p.numel);
    r.grads.push_back(g);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

double maxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cuda-emu", root = "/tmp/rrec-tiny-models";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--device") device = argv[i + 1];
    else if (a == "--dir") root = argv[i + 1];
  }
  mkdir(root.c_str(), 0755);
  for (const char* type : {"qwen2", "gemma2", "llama"}) {
    Tiny t;
    t.type = type;
    const std::string dir = root + "/" + type;
    writeModel(dir, t);
    for (bool bf16 : {false, true}) try {
      // f32 products: the kernels' sums differ from the CPU's in order only. bf16 products: both
      // round activations to bf16, and a sum that differs in its last f32 bit can round to the
      // other bf16 neighbour (2^-9 relative), so the bound is looser.
      const double tl = bf16 ? 1e-2 : 2e-4, tg = bf16 ? 3e-2 : 2e-3;
      const Result cpu = run(dir, "cpu", bf16), dev = run(dir, device, bf16);
      double gmax = 0, gerr = 0;
      for (size_t i = 0; i < cpu.grads.size(); i++) {
        for (double x : cpu.grads[i]) gmax = std::max(gmax, std::fabs(x));
        gerr = std::max(gerr, maxDiff(dev.grads[i], cpu.grads[i]));
      }
      const std::string tag = std::string(type) + " on " + device + (bf16 ? " bf16 products" : " f32 products") + ": ";
      check(tag + "log-probs (max abs diff)", maxDiff(dev.logp, cpu.logp), tl);
      check(tag + "entropy (max abs diff)", maxDiff(dev.entropy, cpu.entropy), tl);
      check(tag + "LoRA gradients (max diff / max grad)", gmax > 0 ? gerr / gmax : 1, tg);
      std::printf("time %s forward+backward: cpu %.3f s, %s %.3f s\n", type, cpu.seconds, device.c_str(), dev.seconds);
    } catch (const std::exception& e) {
      std::printf("FAIL %s on %s: %s\n", type, device.c_str(), e.what());
      failures++;
    }
    try {
      // full fine-tuning: gradients of every weight (f32 master weights), f32 products
      const Result cpu = run(dir, "cpu", false, true), dev = run(dir, device, false, true);
      double gmax = 0, gerr = 0;
      for (size_t i = 0; i < cpu.grads.size(); i++) {
        for (double x : cpu.grads[i]) gmax = std::max(gmax, std::fabs(x));
        gerr = std::max(gerr, maxDiff(dev.grads[i], cpu.grads[i]));
      }
      check(std::string(type) + " on " + device + " full fine-tune: log-probs", maxDiff(dev.logp, cpu.logp), 2e-4);
      check(std::string(type) + " on " + device + " full fine-tune: every weight's gradient", gmax > 0 ? gerr / gmax : 1, 2e-3);
    } catch (const std::exception& e) {
      std::printf("FAIL %s on %s (full fine-tune): %s\n", type, device.c_str(), e.what());
      failures++;
    }
  }
  std::printf("%d passed, %d failed\n", passes, failures);
  return failures == 0 ? 0 : 1;
}
