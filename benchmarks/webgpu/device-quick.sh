#!/usr/bin/env bash
# A quick look at the GPU machine (about 3 minutes, no llama-bench build), from the repo root with .gpu/ prepared by
# benchmarks/webgpu/bundle.sh: copy and Q4_0/Q8_0 matrix-vector bandwidth with a sweep of the matvec grid, attention
# alone, the stories260K gold checks (greedy ids, pipelined ids, perplexity) on this GPU, then the synthetic TinyLlama- and 7B-shaped Q4_0 files (decode pipelined / step by step / with logits,
# prompt, every kernel's time), each model twice: default options and $MODEL_OPTIONS' second set (int8 matvecs); then the kernels and TinyLlama again with Dawn's robustness and validation off, to see
# what they cost. The --deadline values only bound the sections' time guards. Files under $OUT: quick.json, quick.log, quick-unsafe.json, quick-unsafe.log.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/env.sh
M=/tmp/models; mkdir -p "$M"
DEFAULT_SETS='[{},{"matvec":{"int8":true}}]'
SETS=${MODEL_OPTIONS:-$DEFAULT_SETS}
node .gpu/webgpu-bench.mjs --repo . --out "$OUT/quick.json" --models "$M" --deadline "${QUICK_S:-330}" \
  --sections copy,matvec,sweep,attention,gold,generate,models --matvec-formats q4_0,q8_0 \
  --model-list tinyllama:q4_0,llama7b:q4_0 --model-options "$SETS" \
  2>&1 | tee "$OUT/quick.log"
[ -n "${SKIP_UNSAFE:-}" ] && exit 0
NIBBLE_DAWN_FLAGS='enable-dawn-features=allow_unsafe_apis,disable_robustness,skip_validation' \
  node .gpu/webgpu-bench.mjs --repo . --out "$OUT/quick-unsafe.json" --models "$M" --deadline 150 \
  --sections copy,matvec,models --matvec-formats q4_0,q8_0 --model-list tinyllama:q4_0 2>&1 | tee "$OUT/quick-unsafe.log"
exit 0
