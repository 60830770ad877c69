#!/usr/bin/env bash
# ptxas resource usage of the hot kernels (GEMM, attention, LM head) for sm_80 and sm_90:
# prints `-Xptxas -v` per kernel (registers, spills) and fails when any kernel spills.
# usage: native/cuda/check-ptxas.sh [nvcc]      (run by .ci/run and test/native/cuda.test.ts)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nvcc=${1:-nvcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for arch in sm_80 sm_90; do
  for src in gemm.cu attention.cu lm_head.cu; do
    log="$tmp/$arch-$src.log"
    "$nvcc" -std=c++17 -O3 -cubin -arch="$arch" -Xptxas -v -I"$here/.." -I"$here/../include" \
      -DRREC_CUDA_HAVE_GEMM -DRREC_CUDA_HAVE_ATTENTION "$here/$src" -o "$tmp/out.cubin" >"$log" 2>&1 || { cat "$log"; exit 1; }
    # ptxas prints: Compiling entry function 'NAME' for 'sm_80' / ... bytes spill stores, ... bytes spill loads / Used N registers
    awk -v arch="$arch" -v src="$src" '
      /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); name = substr($0, RSTART + 1, RLENGTH - 2) }
      /spill stores/ { split($0, a, " "); for (i = 1; i <= NF; i++) { if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) == "stores,") st = $(i); if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) == "loads") ld = $(i) } }
      /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15);
        printf "ptxas %s %-12s %-60s %3s registers, %s bytes spill stores, %s bytes spill loads\n", arch, src, substr(name, 1, 60), regs, st, ld }
    ' "$log"
    if grep -E "[1-9][0-9]* bytes spill (stores|loads)" "$log" >/dev/null; then
      echo "FAIL: $src spills registers on $arch:"; grep -B2 -E "[1-9][0-9]* bytes spill" "$log"; fail=1
    fi
  done
done
[ $fail -eq 0 ] && echo "ptxas: no spills in the GEMM, attention and LM head kernels for sm_80 and sm_90"
exit $fail
