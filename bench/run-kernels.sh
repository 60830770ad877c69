#!/bin/sh
# Compiles bench/kernels.ts to a temporary directory and runs it from the repository root (tsx is
# not installed; Node 20 cannot run .ts). Build the addon first: npx node-gyp rebuild -j 2
# Usage: sh bench/run-kernels.sh [--rounds=5] [--seconds=0.04] [--no-peers] [--quick]
set -e
cd "$(dirname "$0")/.."
out="${TMPDIR:-/tmp}/rrec-bench-kernels"
npx tsc -p bench/tsconfig.json --outDir "$out"
RREC_ROOT="$PWD" node "$out/bench/kernels.js" "$@"
