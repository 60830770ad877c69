"""Reference log-probs and LoRA gradients from Hugging Face transformers + PEFT (run by hand).

    test/reference/llama-cpp/node_modules/.bin/tsx test/reference/write-tiny-models.ts /tmp/tiny
    python test/reference/make_hf_fixtures.py /tmp/tiny

For each tiny model (llama, qwen2, gemma2; written by test/helpers/tiny-models.ts, seed 1, F32)
this loads the folder with transformers in float64 (eager attention), wraps it with a PEFT LoRA
(r=2, alpha=4, all seven projections, B set to seeded non-zero values), saves the adapter to
test/fixtures/hf/<arch>-adapter/ and writes test/fixtures/hf/<arch>.json holding, for fixed
sequences, log p(token[t+1] | token[..t]) with and without the adapter, and the gradient of
L = sum_t c_t logp_t with respect to every lora_A / lora_B of the first and last layers
(autograd). test/model/forward-hf.test.ts compares the addon's float64 build against them.
Made with the versions recorded in each fixture (torch, transformers, peft on CPU).
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "hf")
SEQS = [  # (tokens, first target index): 13 and 21 tokens exceed gemma2's sliding window of 8
    ([(i * 53 + 5) % 256 for i in range(13)], 4),
    ([(i * 29 + 77) % 256 for i in range(6)], 1),
    ([(i * 71 + 3) % 256 for i in range(21)], 9),
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def coefficients(n):
    # c_t in [-1, 1), a fixed sequence both sides can compute: ((t * 37) % 200 - 100) / 100
    return [((t * 37) % 200 - 100) / 100 for t in range(n)]


def patched_copy(src):
    """transformers wants float softcaps; JSON from JS writes 5.0 as 5."""
    dst = tempfile.mkdtemp(prefix="hf-tiny-")
    for f in os.listdir(src):
        shutil.copy(os.path.join(src, f), dst)
    cfg_path = os.path.join(dst, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    for k in ("attn_logit_softcapping", "final_logit_softcapping", "rms_norm_eps", "rope_theta"):
        if isinstance(cfg.get(k), int):
            cfg[k] = float(cfg[k])
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return dst


def run(arch, src):
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        weights_sha = hashlib.sha256(f.read()).hexdigest()
    model_dir = patched_copy(src)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager")
    cfg = LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    model.eval()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 0.2)
    layers = base.config.num_hidden_layers
    adapter_dir = os.path.join(OUT, f"{arch}-adapter")
    shutil.rmtree(adapter_dir, ignore_errors=True)
    model.peft_config["default"].base_model_name_or_path = f"rrec-emotion/tiny-{arch}"
    model.save_pretrained(adapter_dir)  # F64 params are saved as F64? keep f32 copies below
    out = {"arch": arch, "weightsSha256": weights_sha, "sequences": [], "versions": {
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}}
    total = sum(len(t) - s for t, s in SEQS)
    c = coefficients(total)
    loss = torch.zeros((), dtype=torch.float64)
    k = 0
    for tokens, start in SEQS:
        ids = torch.tensor([tokens])
        logits = model(input_ids=ids).logits[0].double()
        lp = torch.log_softmax(logits, -1)
        with_adapter = [lp[t - 1, tokens[t]] for t in range(start, len(tokens))]
        with model.disable_adapter(), torch.no_grad():
            lpb = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
        base_lp = [lpb[t - 1, tokens[t]].item() for t in range(start, len(tokens))]
        for v in with_adapter:
            loss = loss + c[k] * v
            k += 1
        out["sequences"].append({"tokens": tokens, "targetStart": start,
                                 "logp": [v.item() for v in with_adapter], "logpBase": base_lp})
    loss.backward()
    grads = {}
    for n, p in model.named_parameters():
        if "lora_" not in n:
            continue
        if not (".layers.0." in n or f".layers.{layers - 1}." in n):
            continue
        name = n.replace(".default", "")
        grads[name] = [float(f"{x:.12e}") for x in p.grad.flatten().tolist()]
    out["coefficients"] = c
    out["grads"] = grads
    with open(os.path.join(OUT, f"{arch}.json"), "w") as f:
        json.dump(out, f)
    shutil.rmtree(model_dir)
    print(arch, "grads:", len(grads), "tensors")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for arch in ("llama", "qwen2", "gemma2"):
        run(arch, os.path.join(sys.argv[1], arch))
