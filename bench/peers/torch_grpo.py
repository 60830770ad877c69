#!/usr/bin/env python3
"""PyTorch peer for grpo.step (bench/groups/grpo.ts): the training half of one GRPO step written
in plain torch (Debian's python3-torch 1.13: no transformers, no peft), replayed on the rollouts
our step generated, on the same Qwen2-shaped model read from the same model.safetensors.

What one `step` does, timed in three parts as our grpoStep's time/* metrics split them:
  reference  (beta > 0) no-grad forward of every micro-batch without the adapter  -> ref log-probs
  train      per micro-batch: forward with LoRA (dropout on the adapter's input), per-token
             log-probs of the completion tokens, the GRPO loss (old = the same pass's log-probs,
             detached: num_iterations 1, as TRL), backward
  optimizer  clip_grad_norm_ + AdamW.step + zero_grad

The model: Qwen2 decoder (RMSNorm, RoPE theta from config.json, GQA, q/k/v biases, SiLU MLP,
final norm, tied LM head) in bf16 as stored; each micro-batch padded on the right to its longest
sequence (positions from 0, causal mask, so no real token sees padding). Only the completion rows
go through the LM head (TRL's logits_to_keep); log-softmax in f32. LoRA as modern PEFT builds it on
a bf16 model (autocast_adapter_dtype): f32 A [r, in] (kaiming-uniform, a = sqrt(5)) and B [out, r]
(zeros), the adapter path computed in f32 on dropout(x) and added in bf16, scale alpha / r.

The loss (src/grpo/loss.ts): l_t = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)
+ beta (exp(ref - logp) - (ref - logp) - 1), reduced per loss_type with the per-micro-batch
weights of src/grpo/aggregation.ts and grpoStep's micro-batch scale (src/train/grpo-step.ts),
in float64 (as grpoLossF64).

`check` computes the same loss in float32 (the bf16 weights widened exactly) with a given adapter
and given old log-probs, without dropout, and reports the loss, the adapter's gradient norm and
how far its log-probs are from the ones ours wrote: the benchmark compares them with ours.

Protocol (--serve): builds the bf16 model, prints {"ready": true, "torch": ...}; then one JSON
command per stdin line, one JSON answer per stdout line ({"error": ...} on failure):
  {"cmd": "step", "replay": FILE}                    -> {"reference_ms", "train_ms", "optimizer_ms", "loss", "grad_norm"}
  {"cmd": "check", "replay": FILE, "adapter": FILE}  -> {"loss", "grad_norm", "loss_from_ours_logp", ...}
The replay file (JSON, written by bench/lib/grpo-replay.ts):
  {"seqs": [{"tokens": [...], "prompt_len": P, "truncated": 0|1}], "advantages": [...],
   "micro_batches": [[seq indices], ...], "mask": [...] (optional, per completion token),
   "old_logp"/"ref_logp"/"policy_logp": [...] (optional, flat over completion tokens in seq order)}

usage: python3 torch_grpo.py --serve --model DIR --threads 2 [--rank 8 --alpha 16 --dropout 0.05
         --beta 0.04 --eps_low 0.2 --eps_high 0.2 --loss_type grpo --max_completion_length 64
         --lr 5e-7 --weight_decay 0 --max_grad_norm 1 --mask_truncated 0 --seed 0]
"""
import argparse
import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

TARGETS = [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]
DTYPES = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16}


def read_safetensors(path):
    """{name: tensor} of a .safetensors file: 8-byte little-endian header length, header JSON, data."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n].decode("utf8"))
    view = memoryview(data)[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}; this reader knows {sorted(DTYPES)}")
        a, b = e["data_offsets"]
        t = torch.frombuffer(view[a:b], dtype=DTYPES[e["dtype"]]) if b > a else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Qwen2:
    """The decoder with frozen weights in `dtype`; LoRA tensors are passed to forward()."""

    def __init__(self, model_dir, dtype):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.dtype = dtype
        self.C, self.H, self.Hk = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.D = self.C // self.H
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.w = {k: v.to(dtype) for k, v in w.items()}
        self.embed = self.w["model.embed_tokens.weight"]
        self.head = self.w.get("lm_head.weight", self.embed) if not cfg.get("tie_word_embeddings", False) else self.embed
        self.shapes = {}  # (layer, module) -> (in, out)
        for l in range(self.L):
            for grp, mod in TARGETS:
                out_f, in_f = self.w[f"model.layers.{l}.{grp}.{mod}.weight"].shape
                self.shapes[(l, mod)] = (in_f, out_f)

    def new_lora(self, rank, seed):
        """PEFT's init: A kaiming-uniform (a = sqrt(5): bound 1 / sqrt(in)), B zeros; f32; PEFT names."""
        g = torch.Generator().manual_seed(seed)
        lora = {}
        for l in range(self.L):
            for grp, mod in TARGETS:
                in_f, out_f = self.shapes[(l, mod)]
                p = f"base_model.model.model.layers.{l}.{grp}.{mod}"
                bound = 1.0 / math.sqrt(in_f)
                lora[p + ".lora_A.weight"] = torch.nn.Parameter((torch.rand(rank, in_f, generator=g) * 2 - 1) * bound)
                lora[p + ".lora_B.weight"] = torch.nn.Parameter(torch.zeros(out_f, rank))
        return lora

    def linear(self, x, l, grp, mod, lora, scale, dropout):
        pre = f"model.layers.{l}.{grp}.{mod}"
        y = F.linear(x, self.w[pre + ".weight"], self.w.get(pre + ".bias"))
        if lora is not None:
            p = f"base_model.model.{pre}"
            xl = x.float()
            if dropout > 0:
                xl = F.dropout(xl, dropout, training=True)
            y = y + (F.linear(F.linear(xl, lora[p + ".lora_A.weight"]), lora[p + ".lora_B.weight"]) * scale).to(y.dtype)
        return y

    def logp(self, tokens, rows, targets, lora=None, scale=1.0, dropout=0.0):
        """Log-probs of targets [n] predicted at rows [n] (flat indices into [B * T]) of tokens [B, T]."""
        B, T = tokens.shape
        H, Hk, D, dt = self.H, self.Hk, self.D, self.dtype
        x = self.embed[tokens]
        inv = 1.0 / (self.theta ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(dt), emb.sin().to(dt)
        mask = torch.full((T, T), float("-inf")).triu(1).to(dt)
        lin = lambda h, l, grp, mod: self.linear(h, l, grp, mod, lora, scale, dropout)
        for l in range(self.L):
            pre = f"model.layers.{l}"
            h = rms_norm(x, self.w[pre + ".input_layernorm.weight"], self.eps)
            q = lin(h, l, "self_attn", "q_proj").view(B, T, H, D).transpose(1, 2)
            k = lin(h, l, "self_attn", "k_proj").view(B, T, Hk, D).transpose(1, 2)
            v = lin(h, l, "self_attn", "v_proj").view(B, T, Hk, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(H // Hk, dim=1)
            v = v.repeat_interleave(H // Hk, dim=1)
            s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + mask
            p = torch.softmax(s.float(), dim=-1).to(dt)
            att = (p @ v).transpose(1, 2).reshape(B, T, H * D)
            x = x + lin(att, l, "self_attn", "o_proj")
            h = rms_norm(x, self.w[pre + ".post_attention_layernorm.weight"], self.eps)
            x = x + lin(F.silu(lin(h, l, "mlp", "gate_proj")) * lin(h, l, "mlp", "up_proj"), l, "mlp", "down_proj")
        x = rms_norm(x, self.w["model.norm.weight"], self.eps)
        hs = x.reshape(B * T, self.C)[rows]
        logits = F.linear(hs, self.head).float()
        return logits.log_softmax(-1).gather(1, targets[:, None]).squeeze(1)


class Replay:
    """The rollouts of one of our steps, as padded micro-batches."""

    def __init__(self, path):
        with open(path) as f:
            r = json.load(f)
        self.raw = r
        seqs = r["seqs"]
        self.n_seqs = len(seqs)
        self.adv = [float(a) for a in r["advantages"]]
        # flat completion-token offsets in sequence order (the layout of our packed batch)
        self.tok_off = [0]
        for s in seqs:
            self.tok_off.append(self.tok_off[-1] + len(s["tokens"]) - s["prompt_len"])
        n = self.tok_off[-1]
        self.mask = r.get("mask") or [1] * n
        self.mbs = []
        for idx in r["micro_batches"]:
            T = max(len(seqs[i]["tokens"]) for i in idx)
            tokens = torch.zeros(len(idx), T, dtype=torch.long)
            rows, targets, seq_of, flat = [], [], [], []
            for j, i in enumerate(idx):
                s = seqs[i]
                tk, P = s["tokens"], s["prompt_len"]
                tokens[j, : len(tk)] = torch.tensor(tk)
                for t in range(P, len(tk)):
                    rows.append(j * T + t - 1)
                    targets.append(tk[t])
                    seq_of.append(j)
                flat.extend(range(self.tok_off[i], self.tok_off[i + 1]))
            self.mbs.append({
                "idx": idx, "tokens": tokens, "rows": torch.tensor(rows), "targets": torch.tensor(targets),
                "seq_of": torch.tensor(seq_of), "flat": flat,
                "truncated": [int(seqs[i].get("truncated", 0)) for i in idx],
            })

    def flat(self, key, mb):
        v = self.raw.get(key)
        return None if v is None else torch.tensor([v[k] for k in mb["flat"]], dtype=torch.float64)


def grpo_loss(a, rp, mb, logp, old, ref, num_items):
    """Our grpoLoss on one micro-batch times grpoStep's micro-batch scale; float64; returns a scalar tensor."""
    lp = logp.double()
    old = old.double()
    adv = torch.tensor([rp.adv[i] for i in mb["idx"]], dtype=torch.float64)[mb["seq_of"]]
    ratio = torch.exp(lp - old)
    clipped = ratio.clamp(1 - a.eps_low, 1 + a.eps_high)
    l = -torch.min(ratio * adv, clipped * adv)
    if a.beta > 0:
        d = ref.double() - lp
        l = l + a.beta * (torch.expm1(d) - d)
    m = torch.tensor([rp.mask[k] != 0 for k in mb["flat"]], dtype=torch.float64)
    Bg = len(mb["idx"])
    keep = torch.tensor([0.0 if (a.mask_truncated and t) else 1.0 for t in mb["truncated"]], dtype=torch.float64)
    m = m * keep[mb["seq_of"]]
    counts = torch.zeros(Bg, dtype=torch.float64).index_add_(0, mb["seq_of"], m)
    seq_sum = torch.zeros(Bg, dtype=torch.float64).index_add(0, mb["seq_of"], l * m)
    if a.loss_type == "grpo":
        w = 1.0 / (Bg * counts.clamp(min=1))
        scale = Bg / rp.n_seqs
    elif a.loss_type == "bnpo":
        w = torch.full((Bg,), 1.0 / max(1.0, float(counts.sum())), dtype=torch.float64)
        scale = 1.0 / len(rp.mbs)
    elif a.loss_type == "dapo":
        w = torch.full((Bg,), 1.0 / max(1.0, num_items), dtype=torch.float64)
        scale = 1.0
    elif a.loss_type == "dr_grpo":
        w = torch.full((Bg,), 1.0 / (Bg * a.max_completion_length), dtype=torch.float64)
        scale = Bg / rp.n_seqs
    else:
        raise ValueError(f"loss_type {a.loss_type!r}: expected grpo, bnpo, dapo or dr_grpo")
    w = torch.where(counts > 0, w, torch.zeros_like(w))
    return (w * seq_sum).sum() * scale


def num_loss_items(a, rp):
    n = 0
    for mb in rp.mbs:
        for k, j in zip(mb["flat"], mb["seq_of"].tolist()):
            if rp.mask[k] != 0 and not (a.mask_truncated and mb["truncated"][j]):
                n += 1
    return n


def lora_grad_norm(lora):
    return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in lora.values() if p.grad is not None))


class Peer:
    def __init__(self, a):
        self.a = a
        self.model = Qwen2(a.model, torch.bfloat16)
        self.lora = self.model.new_lora(a.rank, a.seed)
        self.scale = a.alpha / a.rank
        self.opt = torch.optim.AdamW(list(self.lora.values()), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
        self.f32 = None

    def step(self, cmd):
        a, m = self.a, self.model
        rp = Replay(cmd["replay"])
        items = num_loss_items(a, rp)
        t0 = time.perf_counter()
        refs = None
        if a.beta > 0:
            with torch.no_grad():
                refs = [m.logp(mb["tokens"], mb["rows"], mb["targets"]) for mb in rp.mbs]
        t1 = time.perf_counter()
        loss = 0.0
        for g, mb in enumerate(rp.mbs):
            lp = m.logp(mb["tokens"], mb["rows"], mb["targets"], self.lora, self.scale, a.dropout)
            out = grpo_loss(a, rp, mb, lp, lp.detach(), refs[g] if refs else None, items)
            out.backward()
            loss += float(out)
        t2 = time.perf_counter()
        gn = float(torch.nn.utils.clip_grad_norm_(list(self.lora.values()), a.max_grad_norm)) if a.max_grad_norm > 0 else lora_grad_norm(self.lora)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        return {"reference_ms": (t1 - t0) * 1000, "train_ms": (t2 - t1) * 1000, "optimizer_ms": (t3 - t2) * 1000, "loss": loss, "grad_norm": gn}

    def check(self, cmd):
        """f32 loss and adapter gradient on the replay with the adapter in cmd['adapter'], no dropout."""
        a = self.a
        if self.f32 is None:
            self.f32 = Qwen2(a.model, torch.float32)
        m = self.f32
        rp = Replay(cmd["replay"])
        items = num_loss_items(a, rp)
        given = read_safetensors(cmd["adapter"])
        lora = self.model.new_lora(a.rank, a.seed)
        for k, p in lora.items():
            if k not in given:
                raise KeyError(f"{cmd['adapter']}: no tensor {k}")
            if tuple(given[k].shape) != tuple(p.shape):
                raise ValueError(f"{cmd['adapter']}: {k} has shape {list(given[k].shape)}, expected {list(p.shape)}")
            p.data.copy_(given[k].float())
        loss, loss_ours, d_pol, d_ref = 0.0, 0.0, 0.0, 0.0
        for mb in rp.mbs:
            with torch.no_grad():
                ref = m.logp(mb["tokens"], mb["rows"], mb["targets"])
            lp = m.logp(mb["tokens"], mb["rows"], mb["targets"], lora, self.scale, 0.0)
            old = rp.flat("old_logp", mb)
            out = grpo_loss(a, rp, mb, lp, old, ref if a.beta > 0 else None, items)
            out.backward()
            loss += float(out)
            ours_pol, ours_ref = rp.flat("policy_logp", mb), rp.flat("ref_logp", mb)
            if ours_pol is not None:
                d_pol = max(d_pol, float((lp.detach().double() - ours_pol).abs().max()))
                d_ref = max(d_ref, float((ref.double() - ours_ref).abs().max()))
                # the loss formula alone: this function on our log-probs
                loss_ours += float(grpo_loss(a, rp, mb, ours_pol, old, ours_ref if a.beta > 0 else None, items))
        return {"loss": loss, "grad_norm": lora_grad_norm(lora), "loss_from_ours_logp": loss_ours, "policy_logp_max_abs_diff": d_pol, "ref_logp_max_abs_diff": d_ref, "tokens": rp.tok_off[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    for k, v in dict(threads=2, rank=8, seed=0, max_completion_length=64, mask_truncated=0).items():
        ap.add_argument("--" + k, type=int, default=v)
    for k, v in dict(alpha=16.0, dropout=0.05, beta=0.04, eps_low=0.2, eps_high=0.2, lr=5e-7, weight_decay=0.0, max_grad_norm=1.0).items():
        ap.add_argument("--" + k, type=float, default=v)
    ap.add_argument("--loss_type", default="grpo")
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    peer = Peer(a)
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "":
            continue
        try:
            cmd = json.loads(line)
            if cmd.get("cmd") == "step":
                out = peer.step(cmd)
            elif cmd.get("cmd") == "check":
                out = peer.check(cmd)
            else:
                raise ValueError(f"unknown command {line.strip()!r}: expected step or check")
        except Exception as e:  # the benchmark reports it; the process keeps serving
            out = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
