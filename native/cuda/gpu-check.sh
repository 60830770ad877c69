#!/usr/bin/env bash
# The GPU check (README "CUDA"): everything the emulator has shown, confirmed on a real GPU, on a
# machine with CMake, nvcc (12.x or 13.x) and optionally Python + PyTorch, and no Node.
#   1. builds native/ (the CPU core, librrec_cuda.so, librrec_cuda_emu.so, the C++ tests)
#   2. link hygiene (check-link.sh) and ptxas spills (check-ptxas.sh)
#   3. the CPU half: the emulator's test, the every-op test on cuda-emu, the tiny models on cuda-emu
#   4. the GPU half: the every-op test on cuda against the CPU backend, the tiny models on cuda,
#      GEMM and attention TFLOP/s at Qwen2.5-0.5B / 3B shapes, and PyTorch's at the same shapes
#   5. a JSON report (--report, default gpu-check-report.json) and the last line "N passed, N failed"
#      (N counts the steps; each step's own output is in the report)
# usage: native/cuda/gpu-check.sh [--cpu-only] [--build-dir DIR] [--report FILE] [--jobs N]
# .ci/run runs the CPU half (--cpu-only) with the build of `npm test` (--build-dir build-native).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build="$repo/build-gpu-check"
report="$repo/gpu-check-report.json"
cpu_only=0
jobs=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-only) cpu_only=1 ;;
    --build-dir) build=$(cd "$repo" && mkdir -p "$2" && cd "$2" && pwd); shift ;;
    --report) report=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    *) echo "usage: $0 [--cpu-only] [--build-dir DIR] [--report FILE] [--jobs N]" >&2; exit 2 ;;
  esac
  shift
done
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
passed=0
failed=0
steps_json=""
bench_json=""

json_escape() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' 2>/dev/null || sed 's/\\/\\\\/g; s/"/\\"/g; s/$/\\n/' | tr -d '\n' | sed 's/^/"/; s/$/"/'; }

# step NAME COMMAND...: runs it, keeps its output, counts it
step() {
  local name=$1
  shift
  local log="$logs/$(echo "$name" | tr -c 'a-zA-Z0-9' '_').log"
  local t0=$(date +%s.%N)
  "$@" >"$log" 2>&1
  local rc=$?
  local dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  local last=$(grep -v '^\s*$' "$log" | tail -n 1)
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "ok   $name ($dt s): $last"; else failed=$((failed + 1)); echo "FAIL $name ($dt s, exit $rc): $last"; grep -E "FAIL|error" "$log" | head -n 20; fi
  local out=$(tail -c 20000 "$log" | json_escape)
  steps_json="$steps_json${steps_json:+,}{\"name\":\"$name\",\"ok\":$([ $rc -eq 0 ] && echo true || echo false),\"exit\":$rc,\"seconds\":${dt:-0},\"output\":$out}"
  cp "$log" "$logs/last.log"
  return $rc
}

echo "gpu-check: repo $repo, build $build"
command -v nvcc >/dev/null && nvcc --version | tail -n 2
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

step "configure" cmake -S "$repo/native" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRREC_CUDA=ON -DRREC_BUILD_TESTS=ON -DRREC_BACKENDS_OUT=
step "build" cmake --build "$build" -j "$jobs" --target test_backend_ops test_cuda_emu test_cuda_model test_cuda_gemm bench_cuda rrec_cuda_emu
if command -v nvcc >/dev/null; then
  step "build librrec_cuda.so" cmake --build "$build" -j "$jobs" --target rrec_cuda
  step "link hygiene" "$here/check-link.sh" "$build/librrec_cuda.so"
  step "ptxas: no spills (sm_80, sm_90)" "$here/check-ptxas.sh"
else
  echo "note: nvcc not found: librrec_cuda.so is not built; only the emulated half runs"
fi
step "emulator self-test" "$build/test_cuda_emu"
step "every op on cuda-emu vs cpu" "$build/test_backend_ops" --backend cuda-emu
step "mma GEMM edges on cuda-emu vs cpu" "$build/test_cuda_gemm" --backend cuda-emu
step "tiny models on cuda-emu vs cpu" "$build/test_cuda_model" --device cuda-emu --dir "$logs/models-emu"
step "bench on cuda-emu (tiny shapes)" "$build/bench_cuda" --device cuda-emu --tiny

if [ $cpu_only -eq 0 ]; then
  step "cuda backend listed and available" "$build/test_backend_ops" --list
  grep -E "backend cuda " "$logs/last.log"
  if ! grep -qE "backend cuda +available" "$logs/last.log"; then failed=$((failed + 1)); echo "FAIL the cuda backend is not available (reason above)"; fi
  step "every op on cuda vs cpu" "$build/test_backend_ops" --backend cuda --perf
  step "mma GEMM edges on cuda vs cpu" "$build/test_cuda_gemm" --backend cuda
  step "tiny models on cuda vs cpu" "$build/test_cuda_model" --device cuda --dir "$logs/models-gpu"
  if step "bench on cuda (Qwen2.5 shapes)" "$build/bench_cuda" --device cuda; then
    bench_json=$(grep '^{' "$logs/last.log" | paste -sd, -)
    grep '^{' "$logs/last.log"
  fi
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    step "PyTorch peer (same shapes)" python3 - <<'PY'
import json, time, torch
import torch.nn.functional as F
def timed(fn, reps=20):
    fn(); torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(reps): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / reps
for model, M, K, N in [("qwen2.5-0.5b", 2048, 896, 4864), ("qwen2.5-0.5b", 2048, 4864, 896), ("qwen2.5-3b", 2048, 2048, 11008), ("qwen2.5-3b", 2048, 11008, 2048)]:
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16); w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
    s = timed(lambda: x @ w.T)
    print(json.dumps({"op": "torch_matmul", "model": model, "shape": f"M{M} K{K} N{N} bf16", "ms": s * 1e3, "tflops": 2 * M * K * N / s / 1e12}))
for model, S, L, Hq, Hk, D in [("qwen2.5-0.5b", 4, 512, 14, 2, 64), ("qwen2.5-3b", 4, 512, 16, 2, 128)]:
    q = torch.randn(S, Hq, L, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(S, Hq, L, D, device="cuda", dtype=torch.bfloat16); v = torch.randn_like(k)
    s = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    print(json.dumps({"op": "torch_sdpa_fwd", "model": model, "shape": f"S{S} L{L} Hq{Hq} D{D} causal bf16", "ms": s * 1e3, "tflops": 4 * D * Hq * S * L * (L + 1) / 2 / s / 1e12}))
PY
    torch_json=$(grep '^{' "$logs/last.log" | paste -sd, -)
    grep '^{' "$logs/last.log"
    bench_json="$bench_json${bench_json:+${torch_json:+,}}$torch_json"
  else
    echo "note: PyTorch with CUDA not importable: no peer numbers"
  fi
fi

printf '{"cpuOnly":%s,"passed":%d,"failed":%d,"steps":[%s],"bench":[%s]}\n' "$([ $cpu_only -eq 1 ] && echo true || echo false)" \
  "$passed" "$failed" "$steps_json" "$bench_json" >"$report"
echo "report: $report"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
