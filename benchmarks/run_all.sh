#!/usr/bin/env bash
# Every benchmark of benchmarks/README.md, one after the other, each printing its table and writing its JSON/PNG.
#
#   bash benchmarks/run_all.sh [--device cpu|cuda] [--quick] [--results_dir DIR]
#
# DIR defaults to $TWRVAE_BENCHMARK_RESULTS, else benchmarks/results; each script's output is also kept there as
# NAME-DEVICE.log. The corpora come from $TWRVAE_DATA_DIR (default ../shared/data); the reference-code row from
# $TWRVAE_REFERENCE_DIR (default .reference/lang_model, see benchmarks/README.md). A failing script is reported and
# the others still run; the exit status says whether all passed. With --quick on one GPU it takes a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."

device=$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
quick=()
results=${TWRVAE_BENCHMARK_RESULTS:-benchmarks/results}
while [[ $# -gt 0 ]]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --results_dir) results=$2; shift 2 ;;
    *) echo "unknown argument $1; usage: bash benchmarks/run_all.sh [--device cpu|cuda] [--quick] [--results_dir DIR]" >&2
       exit 2 ;;
  esac
done
mkdir -p "$results"
reference=${TWRVAE_REFERENCE_DIR:-.reference/lang_model}
failed=()

run() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name ($device${quick:+, quick})"
  if python "benchmarks/$name.py" --device "$device" "${quick[@]}" --results_dir "$results" "$@" 2>&1 \
      | tee "$results/$name-$device.log"; then
    echo "=== $name: $((SECONDS - start)) s"
  else
    echo "=== $name FAILED after $((SECONDS - start)) s (see $results/$name-$device.log)"
    failed+=("$name")
  fi
}

run training_throughput --reference_dir "$reference"
run cell_states
run generation_speed
run iw_nll_speed
run cost_curves
run bf16_training
run torch_compile
# run from benchmarks/, so that its environment.py is importable (as for `python benchmarks/NAME.py`)
(cd benchmarks && python - "$results" <<'PY'
import sys, torch
from environment import describe
print("machine:", describe("cuda" if torch.cuda.is_available() else "cpu"))
print("results in", sys.argv[1])
PY
)
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
