#!/usr/bin/env bash
# After the main job (bash scripts/demo.sh ../shared/data), builds the Hub folder of the demo model with its card:
# outputs/demo/hub (weights, remote code, tokenizer, README.md card with the test-split numbers, training curves),
# verified to load without this package. Nothing is pushed: see README.md, "Publish to the Hub".
#   bash scripts/publish_demo.sh [MODEL_DIR] [REPO_ID]     (defaults: outputs/demo, your-username/twrvae-e2e-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
model_dir="${1:-outputs/demo}"
repo_id="${2:-your-username/twrvae-e2e-demo}"
if [[ ! -f "$model_dir/test_results.json" ]]; then
  echo "$model_dir/test_results.json is missing: run the main job first (bash scripts/demo.sh ../shared/data)." >&2
  exit 1
fi
python3 training/publish.py "$model_dir" --repo-id "$repo_id" --eval_results "$model_dir/test_results.json"
