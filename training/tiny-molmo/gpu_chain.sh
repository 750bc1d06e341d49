#!/usr/bin/env bash
# The whole tiny-molmo chain on a GPU machine (all stages on CUDA, bf16), for the device tool:
#   bash training/tiny-molmo/gpu_chain.sh "$OUT" [TARGET]    # TARGET: tiny-sft (default) or tiny-sft-grounded
# Stages already committed in training/tiny-molmo/ are reused; the new artifacts land in $OUT/artifacts (copy
# them into training/tiny-molmo/ and commit), the run folders in $OUT/runs. The held-out evaluation runs on the
# CPU machine afterwards: python training/tiny-molmo/chain.py collect tiny-sft --runs <copied runs> ...
set -euo pipefail
OUT=${1:?usage: gpu_chain.sh OUT [TARGET]}
TARGET=${2:-tiny-sft}
cd "$(dirname "$0")/../.."
python -c "import molmo" 2>/dev/null || pip install -q -e .
mkdir -p "$OUT/artifacts"
for stage in training/tiny-molmo/tiny-*/; do
  [ -f "$stage/stage.json" ] && cp -r "$stage" "$OUT/artifacts/"
done
# Image generation runs on the CPU: each stage's images are drawn first with every core (--pregenerate, into
# $MOLMO_GENERATED_CACHE), and the data workers read them back, so the GPU is not kept waiting.
W=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
export MOLMO_GENERATED_CACHE="$OUT/generated"
MOLMO_RUNS="$OUT/runs" python training/tiny-molmo/chain.py run --to "$TARGET" --no-eval --pregenerate \
  --artifacts "$OUT/artifacts" \
  --set "tiny-vision:--workers=$W" --set "tiny-vision-regions:--workers=$W" --set "tiny-vision-clocks:--workers=$W" \
  --set "tiny-pretrain:--data.num_workers=$W" --set "tiny-sft:--data.num_workers=$W" \
  --set "tiny-ground:--data.num_workers=$W" --set "tiny-ground-counts:--data.num_workers=$W" \
  --set "tiny-sft-grounded:--data.num_workers=$W"
