#!/usr/bin/env bash
# The dialogue demos: train the conditional TWR-VAE on DailyDialog and on Switchboard (modeling_twrvae/trainer/configs/dialogue/),
# then evaluate each on the first 500 (context, response) pairs of its test split, 10 responses per context, with
# word2vec vectors trained on the split the model was trained on for the BOW metrics.
#   bash scripts/dialogue_demo.sh [DATA_DIR] [OUTPUT_ROOT]     (defaults: ../shared/data, outputs/dialogue)
# Extra arguments for the training and evaluation steps (a quick check, say) go in $TWRVAE_TRAIN_ARGS and
# $TWRVAE_EVAL_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${1:-${TWRVAE_DATA_DIR:-../shared/data}}"
output_root="${2:-outputs/dialogue}"
read -r -a train_args <<<"${TWRVAE_TRAIN_ARGS:-}"
read -r -a eval_args <<<"${TWRVAE_EVAL_ARGS:-}"
for corpus in dailydialog switchboard; do
  output_dir="$output_root/$corpus-twr-cvae"
  python3 training/train.py --config "dialogue/$corpus-twr-cvae" --data_dir "$data_dir" \
    --output_dir "$output_dir" --overwrite_output_dir ${train_args[@]+"${train_args[@]}"}
  python3 training/evaluate.py --model_name_or_path "$output_dir" --dataset "$corpus" --split test \
    --data_dir "$data_dir" --max_samples 500 --word_vectors_split validation --seed 0 \
    --output_file "$output_dir/test_results.json" ${eval_args[@]+"${eval_args[@]}"}
done
