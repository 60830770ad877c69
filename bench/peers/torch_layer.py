#!/usr/bin/env python3
"""PyTorch peer for the layer benchmark (bench/groups/layer.ts): one Qwen2-shaped decoder layer,
forward + backward, on CPU, either with LoRA on all seven projections (--mode lora: only the
adapters get gradients) or fully trainable (--mode full: every weight, bias and norm gets a
gradient). Written by hand in torch (no transformers) so it runs with Debian's python3-torch 1.13.

Batch mode prints one JSON line: {"name", "torch", "threads", "mode", "dtype", "ms": [...]}.
Serve mode (--serve) builds the layer, runs --warmup steps, prints {"ready": true, "torch": ...},
then for every stdin line runs one step and prints {"ms": x}: the benchmark interleaves these
steps with its own (ours, torch, ours, torch, ...) without paying the Python start-up each round.

usage: python3 torch_layer.py --hidden 896 --heads 14 --kv_heads 2 --intermediate 4864 \
         --batch 4 --seq 256 --rank 8 --dtype bfloat16 --threads 2 --repeats 5 --warmup 1 \
         [--mode lora|full] [--serve]
"""
import argparse
import json
import math
import sys
import time

import torch


def rms_norm(x, w, eps):
    var = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(var + eps)).to(x.dtype) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LoraLinear(torch.nn.Module):
    def __init__(self, k, n, r, alpha, bias, dtype):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(n, k, dtype=dtype) * 0.02, requires_grad=False)
        self.b = torch.nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=False) if bias else None
        self.a = torch.nn.Parameter(torch.randn(r, k, dtype=dtype) / math.sqrt(k))
        self.bb = torch.nn.Parameter(torch.randn(n, r, dtype=dtype) * 0.01)
        self.scale = alpha / r

    def forward(self, x):
        y = torch.nn.functional.linear(x, self.w, self.b)
        return y + torch.nn.functional.linear(torch.nn.functional.linear(x, self.a), self.bb) * self.scale


class FullLinear(torch.nn.Module):
    """nn.Linear with the same initialisation as LoraLinear's frozen weight, all trainable."""

    def __init__(self, k, n, bias, dtype):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(n, k, dtype=dtype) * 0.02)
        self.b = torch.nn.Parameter(torch.zeros(n, dtype=dtype)) if bias else None

    def forward(self, x):
        return torch.nn.functional.linear(x, self.w, self.b)


class Layer(torch.nn.Module):
    def __init__(self, a, dtype):
        super().__init__()
        C, H, Hk, F, r = a.hidden, a.heads, a.kv_heads, a.intermediate, a.rank
        D = C // H
        self.H, self.Hk, self.D = H, Hk, D
        full = a.mode == "full"
        lin = (lambda k, n, bias: FullLinear(k, n, bias, dtype)) if full else (lambda k, n, bias: LoraLinear(k, n, r, 2 * r, bias, dtype))
        self.q = lin(C, H * D, True)
        self.k = lin(C, Hk * D, True)
        self.v = lin(C, Hk * D, True)
        self.o = lin(H * D, C, False)
        self.gate = lin(C, F, False)
        self.up = lin(C, F, False)
        self.down = lin(F, C, False)
        self.n1 = torch.nn.Parameter(torch.ones(C, dtype=dtype), requires_grad=full)
        self.n2 = torch.nn.Parameter(torch.ones(C, dtype=dtype), requires_grad=full)
        inv = 1.0 / (1e6 ** (torch.arange(0, D, 2).float() / D))
        ang = torch.outer(torch.arange(a.seq).float(), inv)
        emb = torch.cat((ang, ang), dim=-1)
        self.cos, self.sin = emb.cos().to(dtype), emb.sin().to(dtype)
        self.mask = torch.full((a.seq, a.seq), float("-inf")).triu(1).to(dtype)

    def forward(self, x):
        B, T, C = x.shape
        h = rms_norm(x, self.n1, 1e-6)
        q = self.q(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k(h).view(B, T, self.Hk, self.D).transpose(1, 2)
        v = self.v(h).view(B, T, self.Hk, self.D).transpose(1, 2)
        q = q * self.cos + rotate_half(q) * self.sin
        k = k * self.cos + rotate_half(k) * self.sin
        g = self.H // self.Hk
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.D) + self.mask
        p = torch.softmax(s.float(), dim=-1).to(x.dtype)
        att = (p @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(att)
        h = rms_norm(x, self.n2, 1e-6)
        return x + self.down(torch.nn.functional.silu(self.gate(h)) * self.up(h))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(hidden=896, heads=14, kv_heads=2, intermediate=4864, batch=4, seq=256, rank=8, threads=2, repeats=5, warmup=1).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--mode", default="lora", choices=["lora", "full"])
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, a.dtype)
    layer = Layer(a, dtype)
    x = torch.randn(a.batch, a.seq, a.hidden, dtype=dtype)

    def step():
        t0 = time.perf_counter()
        y = layer(x)
        y.float().sum().backward()
        t1 = time.perf_counter()
        for p in layer.parameters():
            p.grad = None
        return (t1 - t0) * 1000

    for _ in range(a.warmup):
        step()
    if a.serve:
        print(json.dumps({"ready": True, "torch": torch.__version__, "threads": a.threads, "mode": a.mode, "dtype": a.dtype}), flush=True)
        for line in sys.stdin:
            if line.strip() == "":
                continue
            print(json.dumps({"ms": step()}), flush=True)
        return
    ms = [step() for _ in range(a.repeats)]
    print(json.dumps({"name": "torch.layer_" + a.mode, "torch": torch.__version__, "threads": a.threads, "mode": a.mode, "dtype": a.dtype, "ms": ms}))


if __name__ == "__main__":
    main()
