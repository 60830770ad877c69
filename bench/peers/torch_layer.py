#!/usr/bin/env python3
"""PyTorch peer for the layer benchmark: one Qwen2-shaped decoder layer with LoRA on all seven
projections, forward + backward, on CPU. Written by hand in torch (no transformers) so it runs
with Debian's python3-torch 1.13. Prints one JSON line: {"name", "torch", "threads", "ms": [...]}.

usage: python3 torch_layer.py --hidden 896 --heads 14 --kv_heads 2 --intermediate 4864 \
         --batch 4 --seq 256 --rank 8 --dtype bfloat16 --threads 2 --repeats 5 --warmup 1
"""
import argparse
import json
import math
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


class Layer(torch.nn.Module):
    def __init__(self, a, dtype):
        super().__init__()
        C, H, Hk, F, r = a.hidden, a.heads, a.kv_heads, a.intermediate, a.rank
        D = C // H
        self.H, self.Hk, self.D = H, Hk, D
        self.q = LoraLinear(C, H * D, r, 2 * r, True, dtype)
        self.k = LoraLinear(C, Hk * D, r, 2 * r, True, dtype)
        self.v = LoraLinear(C, Hk * D, r, 2 * r, True, dtype)
        self.o = LoraLinear(H * D, C, r, 2 * r, False, dtype)
        self.gate = LoraLinear(C, F, r, 2 * r, False, dtype)
        self.up = LoraLinear(C, F, r, 2 * r, False, dtype)
        self.down = LoraLinear(F, C, r, 2 * r, False, dtype)
        self.n1 = torch.ones(C, dtype=dtype)
        self.n2 = torch.ones(C, dtype=dtype)
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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, a.dtype)
    layer = Layer(a, dtype)
    x = torch.randn(a.batch, a.seq, a.hidden, dtype=dtype)
    ms = []
    for i in range(a.warmup + a.repeats):
        t0 = time.perf_counter()
        y = layer(x)
        y.float().sum().backward()
        t1 = time.perf_counter()
        for p in layer.parameters():
            p.grad = None
        if i >= a.warmup:
            ms.append((t1 - t0) * 1000)
    print(json.dumps({"name": "torch.layer_lora", "torch": torch.__version__, "threads": a.threads, "dtype": a.dtype, "ms": ms}))


if __name__ == "__main__":
    main()
