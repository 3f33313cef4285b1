#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for the GPU machine, which has no Node.js and gets a copy of this checkout:
#   .gpu/webgpu-bench.mjs       benchmarks/webgpu/bench.ts bundled into one file (esbuild, `webgpu` left external)
#   .gpu/node.xz, .gpu/node_modules/webgpu, .gpu/debs, .gpu/env.sh   Node.js + dawn.node + Vulkan loader (gpu-bundle.sh)
#   .gpu/llama.cpp-src.tar.xz   llama.cpp trimmed for a CUDA build of llama-bench (llama-bench-src.sh)
# The synthetic GGUF files are generated on the GPU machine by the bundle itself (no GBs carried). See README.md.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
shared=${NIBBLE_SHARED:-$(cd "$root/.." && pwd)/shared}
[ -d "$shared/tools" ] || shared=/work/shared
mkdir -p .gpu
# The shared tools add .gpu/ to .git/info/exclude, which a worktree (.git is a file) lacks; .gitignore has it anyway.
tool() {
  if [ -d .git ]; then bash "$shared/tools/$1"
  else bash <(sed -e 's|^mkdir -p .git/info.*|:|' -e 's|^grep -qx .*exclude$|:|' "$shared/tools/$1"); fi
}
[ -f .gpu/env.sh ] && [ -d .gpu/node_modules/webgpu ] || tool gpu-bundle.sh
[ -f .gpu/llama.cpp-src.tar.xz ] || tool llama-bench-src.sh
pnpm exec esbuild benchmarks/webgpu/bench.ts --bundle --platform=node --format=esm --target=node20 \
  --conditions=source --external:webgpu --outfile=.gpu/webgpu-bench.mjs --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
echo "wrote .gpu/webgpu-bench.mjs ($(du -h .gpu/webgpu-bench.mjs | cut -f1)); .gpu is $(du -sh .gpu | cut -f1)"
