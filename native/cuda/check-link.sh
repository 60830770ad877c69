#!/usr/bin/env bash
# Link hygiene of the CUDA backend library (run by .ci/run and test/native/cuda.test.ts):
#   - no NEEDED entry for libcudart, libcuda or libcublas (cudart is linked statically; libcuda is
#     found by cudart at run time, so the library loads on machines without a driver)
#   - the dynamic symbol table exports only rrec_cuda_* entry points
# usage: native/cuda/check-link.sh path/to/librrec_cuda.so [prefix]   (prefix: rrec_cuda_)
set -euo pipefail
lib=${1:?usage: check-link.sh LIB [PREFIX]}
prefix=${2:-rrec_cuda_}
fail=0
needed=$(readelf -d "$lib" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}')
echo "NEEDED: $(echo $needed | tr '\n' ' ')"
for bad in libcudart libcuda libcublas; do
  if echo "$needed" | grep -q "^$bad\."; then echo "FAIL: $lib needs $bad"; fail=1; fi
done
# defined, global/weak dynamic symbols (UND ones are imports from libc and friends)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}')
echo "exported: $(echo $exported | tr '\n' ' ')"
others=$(echo "$exported" | grep -v "^${prefix}" | grep -v '^$' || true)
if [ -n "$others" ]; then echo "FAIL: symbols other than ${prefix}*: $others"; fail=1; fi
[ -n "$(echo "$exported" | grep "^${prefix}")" ] || { echo "FAIL: no ${prefix}* entry point"; fail=1; }
if [ $fail -eq 0 ]; then echo "link hygiene ok: $lib"; fi
exit $fail
