#!/usr/bin/env bash
# The main job: train the demo TWR-VAE on E2E (`--config demo`), then evaluate it on E2E's test split
# and show reconstructions next to their inputs, prior samples and an interpolation (README, "The main job").
#   bash scripts/demo.sh [DATA_DIR] [OUTPUT_DIR]     (defaults: ../shared/data, outputs/demo)
# Extra arguments for the two steps (a quick check, say) go in $TWRVAE_DEMO_TRAIN_ARGS and $TWRVAE_DEMO_EVAL_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${1:-${TWRVAE_DATA_DIR:-../shared/data}}"
output_dir="${2:-outputs/demo}"
read -r -a train_args <<<"${TWRVAE_DEMO_TRAIN_ARGS:-}"
read -r -a eval_args <<<"${TWRVAE_DEMO_EVAL_ARGS:-}"
python3 training/train.py --config demo --data_dir "$data_dir" --output_dir "$output_dir" \
  --overwrite_output_dir ${train_args[@]+"${train_args[@]}"}
python3 training/evaluate.py --model_name_or_path "$output_dir" --dataset e2e --split test --data_dir "$data_dir" \
  --max_samples 1000 --iw_samples 100 --seed 0 --output_file "$output_dir/test_results.json" \
  ${eval_args[@]+"${eval_args[@]}"}
