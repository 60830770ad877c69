#!/bin/sh
# The detailed matmul table: compiles bench/ to dist/bench (as `npm run bench` does; tsx is not
# installed and Node 20 cannot run .ts) and runs bench/kernels.ts from the repository root.
# Build the addon first: npx node-gyp rebuild -j 2
# Usage: sh bench/run-kernels.sh [--rounds=5] [--seconds=0.04] [--no-peers] [--quick]
set -e
cd "$(dirname "$0")/.."
npx tsc -p bench/tsconfig.json --outDir dist/bench
node dist/bench/bench/kernels.js "$@"
