#!/usr/bin/env bash
# The wheel check: what a `pip install` user gets runs every `twrvae` command that trains, evaluates and
# publishes, from a folder outside the clone.
#
#   bash scripts/check_wheel.sh [DATA_DIR]
#
# DATA_DIR defaults to $TWRVAE_DATA_DIR, else ../shared/data (relative to the repository root). It builds the wheel
# from a copy of the clone (so that an old build/ folder cannot leak stale files into it), checks what the wheel holds
# (every subpackage of modeling_twrvae, the shipped configs, the card templates; no tests/, training/, benchmarks/),
# installs it (--no-deps) into a fresh virtual environment that reuses this Python's packages (--system-site-packages:
# torch and the rest are not installed again), and then, from an empty temporary folder with no PYTHONPATH, checks
# that `modeling_twrvae` is imported from the environment (not from the clone or an editable install) and runs a
# tiny `twrvae train --config demo`, `twrvae evaluate` and `twrvae publish`, each of which must exit 0 and write its
# files. About a minute on 2 CPU cores. Everything goes to a temporary folder, removed at the end
# ($TWRVAE_KEEP_WHEEL_CHECK=1 keeps it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data_dir=${1:-${TWRVAE_DATA_DIR:-$root/../shared/data}}
[[ -d $data_dir ]] || { echo "check_wheel: no data folder $data_dir (pass DATA_DIR or set \$TWRVAE_DATA_DIR)" >&2; exit 1; }
data_dir=$(cd "$data_dir" && pwd)
python=${PYTHON:-python3}
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/twrvae-wheel-check.XXXXXX")
cleanup() { if [[ ${TWRVAE_KEEP_WHEEL_CHECK:-} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
case "$work/" in "$root"/*) echo "check_wheel: the temporary folder $work is inside the clone" >&2; exit 1 ;; esac
step() { echo "=== check_wheel: $* ($((SECONDS - start)) s)"; }

step "copy the sources"
mkdir "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked and new files, not what .gitignore names (build/, outputs/, *.egg-info ...)
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
    | tar -xf - -C "$work/src"
else
  (cd "$root" && tar --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=./outputs \
    --exclude=./runs --exclude=./.venv --exclude=__pycache__ -cf - .) | tar -xf - -C "$work/src"
fi

step "build the wheel"
# Without build isolation where setuptools >= 71 (which builds wheels itself) is here, as the dev extra installs it:
# nothing to download. Else pip fetches the build requirements of pyproject.toml.
isolation=()
if "$python" -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) < 71)' 2>/dev/null; then
  isolation=(--no-build-isolation)
fi
(cd "$work/src" && "$python" -m pip wheel . --no-deps "${isolation[@]}" --quiet -w "$work/dist")
wheel=$(ls "$work"/dist/twrvae-*.whl)
echo "built $(basename "$wheel")"

step "check what the wheel holds"
"$python" - "$wheel" "$work/src" <<'PY'
import sys
import zipfile
from pathlib import Path

wheel, source = Path(sys.argv[1]), Path(sys.argv[2])
names = zipfile.ZipFile(wheel).namelist()
files = [name for name in names if ".dist-info/" not in name]
problems = []
top = sorted({name.split("/")[0] for name in files})
if top != ["modeling_twrvae"]:
    problems.append(f"top-level entries besides modeling_twrvae: {top}")
package = source / "modeling_twrvae"
wanted = sorted(
    str(path.relative_to(source))
    for path in package.rglob("*")
    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
)
missing = sorted(set(wanted) - set(files))
if missing:
    problems.append(f"missing from the wheel: {missing}")
subpackages = sorted(str(path.parent.relative_to(source)) for path in package.rglob("__init__.py"))
for name in subpackages:
    if f"{name}/__init__.py" not in files:
        problems.append(f"subpackage {name} is missing")
for name in ("modeling_twrvae/trainer/configs/demo.yaml", "modeling_twrvae/hub/templates/twrvae.md",
             "modeling_twrvae/hub/templates/twrcvae.md", "modeling_twrvae/pipeline_twrvae.py"):
    if name not in files:
        problems.append(f"{name} is missing")
if not any(name.endswith(".dist-info/entry_points.txt") for name in names):
    problems.append("no entry_points.txt: the twrvae command would be missing")
if problems:
    raise SystemExit("check_wheel: the wheel is incomplete:\n  " + "\n  ".join(problems))
configs = [name for name in files if name.endswith(".yaml")]
templates = [name for name in files if name.startswith("modeling_twrvae/hub/templates/")]
print(f"{len(files)} files: {sum(n.endswith('.py') for n in files)} .py in {len(subpackages)} packages "
      f"({', '.join(s.removeprefix('modeling_twrvae').lstrip('/') or '.' for s in subpackages)}), "
      f"{len(configs)} configs, {len(templates)} card templates")
PY

step "install it into a fresh virtual environment"
# --without-pip: the system's pip (visible through --system-site-packages) installs into the environment, which
# saves ensurepip's few seconds; --ignore-installed: install even though an (editable) twrvae is visible there.
"$python" -m venv --system-site-packages --without-pip "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-deps --ignore-installed --no-warn-script-location "$wheel"
bin=$work/venv/bin

mkdir "$work/run"
cd "$work/run"
unset PYTHONPATH
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TWRVAE_DATA_DIR=$data_dir

step "import modeling_twrvae from the environment"
"$bin/python" - "$work/venv" "$root" <<'PY'
import importlib
import sys
from importlib import resources
from pathlib import Path

venv, clone = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
import modeling_twrvae

where = Path(modeling_twrvae.__file__).resolve()
if venv not in where.parents:
    raise SystemExit(f"check_wheel: modeling_twrvae comes from {where}, not from the environment {venv}")
for name in ("data.corpora", "metrics.likelihood", "metrics.text", "metrics.dialogue", "trainer.shipped_configs",
             "hub.model_card", "commands.cli", "commands.train", "commands.evaluate", "commands.publish"):
    module = importlib.import_module(f"modeling_twrvae.{name}")
    if clone in Path(module.__file__).resolve().parents:
        raise SystemExit(f"check_wheel: modeling_twrvae.{name} comes from the clone: {module.__file__}")
assert (resources.files("modeling_twrvae.trainer") / "configs" / "demo.yaml").is_file()
assert (resources.files("modeling_twrvae.hub") / "templates" / "twrvae.md").is_file()
print("modeling_twrvae from", where.parent)
PY

step "twrvae --help"
help=$("$bin/twrvae" --help)
for command in train evaluate publish; do
  grep -qw "$command" <<<"$help" || { echo "check_wheel: twrvae --help does not list $command:" >&2; echo "$help" >&2; exit 1; }
done

step "twrvae train --config demo (2 steps of a tiny model)"
"$bin/twrvae" train --config demo --data_dir "$data_dir" --output_dir model --max_train_steps 2 \
  --max_train_samples 48 --max_eval_samples 8 --logging_steps 1 --per_device_train_batch_size 8 \
  --eval_steps 2 --checkpointing_steps 1000 --config_overrides embedding_size=16,hidden_size=8,latent_size=4
for file in config.json model.safetensors tokenizer.json training_config.yaml eval_results.json; do
  [[ -s model/$file ]] || { echo "check_wheel: twrvae train did not write model/$file" >&2; exit 1; }
done

step "twrvae evaluate"
"$bin/twrvae" evaluate --model_name_or_path model --dataset e2e --split test --data_dir "$data_dir" \
  --max_samples 4 --iw_samples 2 --num_prior_samples 2 --num_interpolation_pairs 1 --max_new_tokens 5 \
  --no_progress --output_file model/test_results.json
for file in test_results.json test_results.md; do
  [[ -s model/$file ]] || { echo "check_wheel: twrvae evaluate did not write model/$file" >&2; exit 1; }
done

step "twrvae publish (the Hub folder, no upload)"
"$bin/twrvae" publish model --repo-id someone/test --eval_results model/test_results.json
for file in README.md config.json model.safetensors tokenizer.json; do
  [[ -s model/hub/$file ]] || { echo "check_wheel: twrvae publish did not write model/hub/$file" >&2; exit 1; }
done
ls model/hub/*.py >/dev/null || { echo "check_wheel: the Hub folder has no model code" >&2; exit 1; }

step "passed"
