#!/usr/bin/env bash
# Issue 15, experiment 3 (docs/double_embedding.md): a small Double Embedding network beside the
# associative-embedding network of the same backbone, trained on crowded synthetic scenes with the
# same data, steps, batch, optimiser, schedule and augmentation. Both start from the backbone of
# the shipped model (model.init_scope: backbone; heads random), so that a CPU budget is enough to
# learn to localise people; the AE comparison therefore starts from features that were trained
# for AE heads (a bias toward AE, stated in the report).
# Usage: bash training/dem_vs_ae_experiment.sh [BACKBONE_WEIGHTS]   (about 1 h on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
backbone=${1:-pose_core/weights/higherhrnet_lite_w16_256_coco.pt}
synth() { [ -f "$1/annotations.json" ] || ./env.sh pose-synth --out "$@" --no-progress; }
synth data/dem_crowd/train --num-images 4000 --seed 311 --size 256 256 --difficulty crowd --max-people 8
synth data/dem_crowd/val --num-images 100 --seed 312 --size 256 256 --difficulty crowd --max-people 8
synth data/dem_crowd/test --num-images 300 --seed 313 --size 256 256 --difficulty crowd --max-people 8
synth data/heldout_default_777 --num-images 500 --seed 777
for config in dem_synthetic_crowd ae_synthetic_crowd; do
  ./env.sh pose-train --config "config/train/$config.yaml" "model.init_checkpoint=$backbone" \
    > "runs/$config.console.log" 2>&1 &
done
wait
out=docs/double_embedding_runs; mkdir -p "$out"
for set in dem_crowd/test heldout_default_777; do
  name=$(echo "$set" | tr / _)
  ./env.sh pose-eval --dataset coco --annotations "data/$set/annotations.json" \
    --images "data/$set/images" --model higherhrnet_lite_w16_256_coco \
    --checkpoint runs/ae_synthetic_crowd/last.pt --json "$out/trained_ae_$name.json" | tail -3
  for mode in paper release; do
    ./env.sh pose-eval --dataset coco --annotations "data/$set/annotations.json" \
      --images "data/$set/images" --model dem_higherhrnet_lite_w16_256_coco --dem-mode "$mode" \
      --checkpoint runs/dem_synthetic_crowd/last.pt --json "$out/trained_dem_${mode}_$name.json" | tail -3
  done
done
./env.sh python training/plot_dem_vs_ae.py --runs "$out"
