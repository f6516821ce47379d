#!/usr/bin/env bash
# Builds the ready-to-publish models of the corpora in ../shared/data: TWR-VAE on Yelp, E2E, PTB and Yahoo, each trained
# by training/train.py (modeling_twrvae/trainer/configs/hub/*.yaml), evaluated on data it never saw by training/evaluate.py, and
# made into a Hub folder with its card by training/publish.py (outputs/hub-models/NAME/hub/). Nothing is pushed.
#   bash scripts/build_hub_models.sh [DATA_DIR] [--stage train|publish|all] [NAME ...]
# NAME is yelp, e2e, ptb or yahoo (default: all four). Yelp's model also gets its sentiment vector `positive`
# (twrvae attribute-vector --into-model) before it is evaluated. `--stage train` trains and evaluates; `--stage publish` only
# rebuilds the Hub folders of models already trained; `all` (the default) does both. Set ORG for the repo ids,
# TWRVAE_HUB_ROOT for another output folder (default outputs/hub-models), and extra arguments for the training and
# evaluation steps (a quick check, say) in $TWRVAE_TRAIN_ARGS and $TWRVAE_EVAL_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${TWRVAE_DATA_DIR:-../shared/data}"
if [[ $# -gt 0 && "$1" != --* && "$1" != yelp && "$1" != e2e && "$1" != ptb && "$1" != yahoo ]]; then
  data_dir="$1"
  shift
fi
stage=all
if [[ "${1:-}" == --stage ]]; then
  stage="$2"
  shift 2
fi
case "$stage" in train | publish | all) ;; *) echo "--stage must be train, publish or all, got $stage" >&2; exit 2 ;; esac
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(yelp e2e ptb yahoo)
org="${ORG:-your-username}"
root="${TWRVAE_HUB_ROOT:-outputs/hub-models}"
read -r -a train_args <<<"${TWRVAE_TRAIN_ARGS:-}"
read -r -a eval_args <<<"${TWRVAE_EVAL_ARGS:-}"

for name in "${names[@]}"; do
  model_dir="$root/$name-twr-vae"
  described=()
  training_data=()
  case "$name" in
    yelp)
      evaluation=(--dataset yelp-sentiment --split test --num_prior_samples 1000 --max_new_tokens 20)
      described=(--eval_data_description "the 2,000 test sentences of the Yelp sentiment split, which training never saw")
      ;;
    e2e)
      evaluation=(--dataset e2e --split test --max_samples 1000)
      described=(--eval_data_description "the first 1,000 texts of E2E NLG's test split")
      ;;
    ptb)
      evaluation=(--dataset ptb --split test --max_samples 500)
      described=(--eval_data_description "the first 500 sentences of Penn Treebank's test split")
      ;;
    yahoo)
      # Yahoo has no test split here: its validation file is cut into a training part and an unseen test part.
      mkdir -p "$root/data"
      head -n 9000 "$data_dir/yahoo/yahoo.valid.txt" >"$root/data/yahoo-train.txt"
      tail -n +9001 "$data_dir/yahoo/yahoo.valid.txt" >"$root/data/yahoo-test.txt"
      training_data=(--train_file "$root/data/yahoo-train.txt")
      evaluation=(--validation_file "$root/data/yahoo-test.txt" --max_length 64 --max_samples 200)
      described=(--eval_data_description "the first 200 of the last 1,000 documents of Yahoo's yahoo.valid.txt, which training never saw")
      ;;
    *) echo "unknown model $name: choose yelp, e2e, ptb or yahoo" >&2; exit 2 ;;
  esac
  if [[ "$stage" != publish ]]; then
    python3 training/train.py --config "hub/$name-twr-vae" --data_dir "$data_dir" \
      --output_dir "$model_dir" --overwrite_output_dir ${training_data[@]+"${training_data[@]}"} \
      ${train_args[@]+"${train_args[@]}"}
    if [[ "$name" == yelp ]]; then
      # the sentiment vector: mean posterior mode of 20,000 positive training sentences minus 20,000 negative ones
      # ($TWRVAE_VECTOR_SENTENCES changes the count, for a quick check)
      mkdir -p "$root/data"
      python3 -c "import random, sys; from modeling_twrvae.data.yelp import load_yelp_sentiment
t = load_yelp_sentiment('train', sys.argv[1]); texts, labels = t['text'], t['label']
rows = random.Random(0).sample(range(len(texts)), len(texts))
for label, name in ((1, 'positive'), (0, 'negative')):
    chosen = [texts[i] for i in rows if labels[i] == label][:int(sys.argv[3])]
    open(f'{sys.argv[2]}/yelp-{name}.txt', 'w').write(chr(10).join(chosen) + chr(10))" "$data_dir" "$root/data" \
        "${TWRVAE_VECTOR_SENTENCES:-20000}"
      python3 -m modeling_twrvae attribute-vector "$model_dir" --with "$root/data/yelp-positive.txt" \
        --without "$root/data/yelp-negative.txt" --into-model positive
    fi
    python3 training/evaluate.py --model_name_or_path "$model_dir" "${evaluation[@]}" --data_dir "$data_dir" \
      --iw_samples 100 --seed 0 --no_progress --output_file "$model_dir/test_results.json" \
      ${eval_args[@]+"${eval_args[@]}"}
  fi
  if [[ "$stage" != train ]]; then
    python3 training/publish.py "$model_dir" --repo-id "$org/twrvae-$name" --eval_results "$model_dir/test_results.json" \
      "${described[@]}"
  fi
done
