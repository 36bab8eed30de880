#!/usr/bin/env bash
# The checks of the shipped model (issue 18), each writing into docs/shipped_model_runs/:
#   held-out AP (pose-synth defaults, seed 777, never trained or selected on) and the easy
#   level's held-out set (seed 12, the stage-1 report's set), for the new and the previous
#   weights, at the model's default test settings (flip, scales 1 and 1.5) and at a single scale;
#   the demo's own evaluation (200 scored frames, 640x480, its default people; once for the
#   contact sheet, then three times per weights, alternating); the node's frame
#   rate with both weights side by side in one run (camera replaying a 120-frame clip, so that
#   rendering does not take a core from the node).
# Usage: bash training/shipped_model_checks.sh NEW_WEIGHTS PREVIOUS_WEIGHTS
set -euo pipefail
cd "$(dirname "$0")/.."
new=${1:?new weights}; old=${2:?previous weights}
out=docs/shipped_model_runs; mkdir -p "$out"
[ -f data/heldout_default_777/annotations.json ] || \
  ./env.sh pose-synth --out data/heldout_default_777 --num-images 500 --seed 777 --no-progress
[ -f data/synthetic_easy/val/annotations.json ] || \
  ./env.sh pose-synth --out data/synthetic_easy/val --num-images 300 --seed 12 --size 256 256 \
    --keypoints coco --difficulty easy --no-progress
for tag in new old; do
  weights=$new; [ "$tag" = old ] && weights=$old
  for set in heldout_default_777 synthetic_easy/val; do
    name=$(echo "$set" | tr / _)
    for scales in default single; do
      extra=(); suffix=""
      [ "$scales" = single ] && { extra=(--scales 1.0); suffix="_single_scale"; }
      ./env.sh pose-eval --dataset coco --annotations "data/$set/annotations.json" \
        --images "data/$set/images" --model higherhrnet_lite_w16_256_coco "${extra[@]}" \
        --checkpoint "$weights" --json "$out/${tag}_${name}${suffix}.json" | grep -E "^ *AP "
    done
  done
done
./env.sh python -m pose_ros.demo --eval-frames 200 --out outputs/demo_check --checkpoint "$new" \
  --model higherhrnet_lite_w16_256_coco | tail -4
cp outputs/demo_check/summary.json "$out/demo_summary.json"
cp outputs/demo_check/contact_sheet.jpg docs/demo_contact_sheet.jpg
# Which frames the node scores depends on timing (frames arriving while it works are dropped),
# so one demo run moves by a few points: three runs per weights, alternating.
for round in 1 2 3; do
  for tag in old new; do
    weights=$new; [ "$tag" = old ] && weights=$old
    echo -n "$tag $round: "
    ./env.sh python -m pose_ros.demo --eval-frames 200 --out "outputs/demo_repeat_$tag" \
      --checkpoint "$weights" --model higherhrnet_lite_w16_256_coco 2>&1 \
      | grep -E "^done:|evaluation over" | tr '\n' ' '; echo
  done
done | tee "$out/demo_repeats.txt"
./env.sh python -m pose_ros.node_benchmark --backends onnxruntime --checkpoints "$old" "$new" \
  --rounds 3 --seconds 15 --warmup 8 --rate 30 --loop-frames 120 --out-dir "$out" \
  --stem node_fps_old_vs_new
