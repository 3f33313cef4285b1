#!/usr/bin/env bash
# The GPU machine's whole benchmark in one call (under 10 minutes), from the repo root with .gpu/ prepared by
# benchmarks/webgpu/bundle.sh: builds llama-bench (CUDA, sm_90) in the background while ours measures copy and
# matrix-vector bandwidth and writes the synthetic models, then measures the models once the build is done, then
# llama-bench on the same files, then folds llama-bench's figures (and the ratios) into $OUT/webgpu.json.
# Files under $OUT: webgpu.json, webgpu.log, build.log, lb-<model>.json (7 in all).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/env.sh
M=/tmp/models; mkdir -p "$M" /tmp/src
tar -xJf .gpu/llama.cpp-src.tar.xz -C /tmp/src
# A second call soon after (the machine still warm) reuses the build and the models; SKIP_OURS=1 runs only llama-bench.
if [ -x /tmp/lb/bin/llama-bench ]; then touch /tmp/lb.done; else {
  rm -f /tmp/lb.done
  cmake -S /tmp/src/llama.cpp -B /tmp/lb -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF > "$OUT/build.log" 2>&1 \
    && nice cmake --build /tmp/lb --target llama-bench -j16 >> "$OUT/build.log" 2>&1
  echo "build exit $? after $SECONDS s" >> "$OUT/build.log"
  touch /tmp/lb.done
} & fi
if [ -z "${SKIP_OURS:-}" ]; then
  node .gpu/webgpu-bench.mjs --repo . --out "$OUT/webgpu.json" --models "$M" --deadline "${BENCH_S:-500}" \
    --wait-for /tmp/lb.done --wait-max 300 2>&1 | tee "$OUT/webgpu.log"
else
  node .gpu/webgpu-bench.mjs --repo . --out "$OUT/webgpu.json" --models "$M" --sections generate 2>&1 | tee "$OUT/webgpu.log"
fi
wait
for f in tinyllama-q4_0 llama7b-q4_0 tinyllama-q8_0 llama7b-q8_0; do
  [ -f "$M/$f.gguf" ] && [ -x /tmp/lb/bin/llama-bench ] || continue
  timeout 100 /tmp/lb/bin/llama-bench -m "$M/$f.gguf" -ngl 99 -fa 1 -p 512 -n 128 -r 5 -o json \
    > "$OUT/lb-$f.json" 2>> "$OUT/build.log"
done
[ -z "${SKIP_OURS:-}" ] && node .gpu/webgpu-bench.mjs merge --out "$OUT/webgpu.json" "$OUT"/lb-*.json 2>&1 | tee -a "$OUT/webgpu.log"
exit 0
