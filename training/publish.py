"""Make a trained model a Hugging Face Hub repository: weights, remote code, tokenizer, card, results; then push.

    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo               # builds outputs/demo/hub
    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo --push        # ... and uploads it

The folder (default `hub/` inside CHECKPOINT_DIR) holds `model.safetensors`, `config.json` with `auto_map`, the
modeling source files for `trust_remote_code`, the tokenizer, `generation_config.json`, the card as `README.md`
(model_cards/twrvae.md), `training_curves.png`, `training_config.yaml` and the evaluation JSON. It is built under a
temporary name and renamed into place only once it has been loaded back in a fresh Python process where this package
cannot be imported, with `trust_remote_code=True`, and has produced the same greedy text as the checkpoint; otherwise
nothing is written and nothing is pushed. `--push` uploads with `HfApi` (`create_repo`, `upload_folder`), with the
token of `HF_TOKEN` or of `hf auth login`; a failure is one error line and leaves the local folder as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch
import yaml
from huggingface_hub import HfApi, get_token
from transformers import AutoModel, AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import modeling_twrvae  # noqa: E402, F401  (registers the model classes with AutoModel)
from modeling_twrvae import check_model_folder  # noqa: E402
from training.dialogue_model_card import render_dialogue_model_card  # noqa: E402
from training.model_card import render_model_card  # noqa: E402

PACKAGE = "modeling_twrvae"
CURVES = "training_curves.png"
TRAINING_CONFIG = "training_config.yaml"
VALIDATION_RESULTS = "eval_results.json"
DEFAULT_EVAL_RESULTS = "test_results.json"
PROBE_SAMPLES = 4
PROBE_TOKENS = 20
VERIFY_TIMEOUT = 600


class PublishError(RuntimeError):
    """A problem that stops publishing; its message is the one line the user sees."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint_dir", help="A folder written by training/train.py (or save_pretrained).")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="ORG/NAME on the Hub.")
    parser.add_argument("--output_dir", "--output-dir", help="Where the Hub folder goes (default: CHECKPOINT_DIR/hub).")
    parser.add_argument(
        "--eval_results",
        "--eval-results",
        help=f"JSON of training/evaluate.py for the card (default: CHECKPOINT_DIR/{DEFAULT_EVAL_RESULTS} if present).",
    )
    parser.add_argument(
        "--eval_data_description",
        help="How the card names the evaluation data when it is a file, e.g. 'the last 1,000 documents of ...'.",
    )
    parser.add_argument("--license", default="apache-2.0", help="The card's licence id (default: apache-2.0).")
    parser.add_argument("--push", action="store_true", help="Upload the verified folder to the Hub.")
    parser.add_argument("--private", action="store_true", help="Create the repository private (with --push).")
    parser.add_argument("--revision", help="Branch to upload to (created if needed; default: main).")
    parser.add_argument("--commit-message", "--commit_message", dest="commit_message", help="Commit message.")
    args = parser.parse_args(argv)
    if not _valid_repo_id(args.repo_id):
        parser.error(f"--repo-id must be ORG/NAME (letters, digits, '-', '_', '.'), got {args.repo_id!r}.")
    return args


def _valid_repo_id(repo_id: str) -> bool:
    parts = repo_id.split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return len(parts) == 2 and all(part and set(part) <= allowed and not part.startswith(".") for part in parts)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise PublishError(f"{path} is not a readable JSON file ({error}).") from error


def load_checkpoint(checkpoint_dir: Path):
    if not (checkpoint_dir / "config.json").is_file():
        raise PublishError(
            f"{checkpoint_dir} has no config.json: give the folder that training/train.py or save_pretrained wrote."
        )
    try:
        check_model_folder(checkpoint_dir)
        model = AutoModel.from_pretrained(checkpoint_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    except (OSError, ValueError) as error:
        raise PublishError(f"the checkpoint does not load: {error}") from error
    return model, tokenizer


DIALOGUE_MODEL_TYPE = "twrcvae"
DEFAULT_CONTEXTS = [["hello , how are you ?"], ["what time is it ?", "it is five o'clock ."]]


@torch.no_grad()
def greedy_probe(model, tokenizer, examples: list) -> dict:
    """What the published folder must reproduce. The language model: greedy text from fixed prior latents and
    greedy reconstructions of example texts. The dialogue model: greedy responses to example contexts, each from a
    prior sample drawn with a seeded generator."""
    if model.config.model_type == DIALOGUE_MODEL_TYPE:
        contexts = [list(context) for context in examples[:PROBE_SAMPLES]] or DEFAULT_CONTEXTS
        generator = torch.Generator().manual_seed(0)
        responses = [
            model.respond(context, tokenizer, num_return_sequences=2, generator=generator, max_new_tokens=PROBE_TOKENS)
            for context in contexts
        ]
        return {"contexts": contexts, "responses": responses}
    latents = model.sample_prior(PROBE_SAMPLES, generator=torch.Generator().manual_seed(0))
    samples = model.decode_latents(latents, tokenizer, do_sample=False, max_new_tokens=PROBE_TOKENS)
    texts = list(examples[:PROBE_SAMPLES]) or samples
    reconstructions = model.reconstruct(texts, tokenizer, do_sample=False, max_new_tokens=PROBE_TOKENS)
    return {"latents": latents.cpu(), "texts": texts, "samples": samples, "reconstructions": reconstructions}


# Run by a fresh interpreter: the package is neither on sys.path nor importable (an installed copy is blocked too),
# so the folder's own files are all that the model can come from.
_VERIFY_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys
    folder, probe_file, package, repo_root = sys.argv[1:5]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", repo_root)]

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == package or name.startswith(package + "."):
                raise ImportError("blocked to verify the published folder: " + name)

    sys.meta_path.insert(0, Block())
    import torch
    from transformers import AutoModel, AutoTokenizer

    probe = torch.load(probe_file)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    if not type(model).__module__.startswith("transformers_modules"):
        raise SystemExit("the model did not load from the folder's own code: " + type(model).__module__)
    with torch.no_grad():
        if "contexts" in probe:
            generator = torch.Generator().manual_seed(0)
            result = {"responses": [
                model.respond(context, tokenizer, num_return_sequences=2, generator=generator,
                              max_new_tokens=probe["tokens"])
                for context in probe["contexts"]
            ]}
        else:
            result = {
                "samples": model.decode_latents(probe["latents"], tokenizer, do_sample=False,
                                                max_new_tokens=probe["tokens"]),
                "reconstructions": model.reconstruct(probe["texts"], tokenizer, do_sample=False,
                                                     max_new_tokens=probe["tokens"]),
            }
    print("VERIFY-RESULT " + json.dumps(result))
    """
)


def verify_hub_folder(folder: Path, probe: dict) -> None:
    """Load `folder` in a fresh process without the package and check its greedy text against `probe`."""
    with tempfile.TemporaryDirectory(prefix="twrvae-verify-") as scratch:
        probe_file = Path(scratch) / "probe.pt"
        inputs = {key: probe[key] for key in ("latents", "texts", "contexts") if key in probe}
        torch.save({**inputs, "tokens": PROBE_TOKENS}, probe_file)
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(Path(scratch) / "modules"))
        try:
            result = subprocess.run(
                [sys.executable, "-c", _VERIFY_SCRIPT, str(folder.resolve()), str(probe_file), PACKAGE, str(REPO_ROOT)],
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=VERIFY_TIMEOUT,
            )
        except subprocess.TimeoutExpired as error:
            raise PublishError(
                f"loading the built folder back took over {VERIFY_TIMEOUT} s; nothing was written."
            ) from error
    lines = [line for line in result.stdout.splitlines() if line.startswith("VERIFY-RESULT ")]
    if result.returncode != 0 or not lines:
        last = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"])[-1]
        raise PublishError(
            "the built folder does not load with trust_remote_code=True in a Python without this package "
            f"({last}); nothing was written or pushed."
        )
    loaded = json.loads(lines[-1][len("VERIFY-RESULT ") :])
    for key in ("samples", "reconstructions", "responses"):
        if key in probe and loaded.get(key) != probe[key]:
            mismatch = next(
                (pair for pair in zip(probe[key], loaded.get(key) or [], strict=False) if pair[0] != pair[1]),
                (probe[key], loaded.get(key)),
            )
            raise PublishError(
                f"the built folder, loaded back without this package, gives other greedy {key} than the checkpoint "
                f"({mismatch[0]!r} instead of {mismatch[1]!r}); nothing was written or pushed."
            )


def build_hub_folder(
    checkpoint_dir: str | Path,
    repo_id: str,
    output_dir: str | Path | None = None,
    eval_results: str | Path | None = None,
    eval_data_description: str | None = None,
    license: str = "apache-2.0",
) -> Path:
    """Build, verify and atomically put in place the Hub folder of a checkpoint; returns its path."""
    checkpoint_dir = Path(checkpoint_dir)
    output_dir = Path(output_dir) if output_dir else checkpoint_dir / "hub"
    if output_dir.resolve() == checkpoint_dir.resolve():
        raise PublishError("--output_dir must not be the checkpoint folder itself: the Hub folder replaces it whole.")
    model, tokenizer = load_checkpoint(checkpoint_dir)

    eval_file = Path(eval_results) if eval_results else checkpoint_dir / DEFAULT_EVAL_RESULTS
    if eval_results and not eval_file.is_file():
        raise PublishError(f"--eval_results {eval_file} does not exist; run training/evaluate.py first.")
    results = _read_json(eval_file) if eval_file.is_file() else None
    training_file = checkpoint_dir / TRAINING_CONFIG
    training_config = yaml.safe_load(training_file.read_text(encoding="utf-8")) if training_file.is_file() else None
    validation_file = checkpoint_dir / VALIDATION_RESULTS
    validation = _read_json(validation_file) if validation_file.is_file() else None
    dialogue = model.config.model_type == DIALOGUE_MODEL_TYPE
    if dialogue:  # evaluate.py's dialogue examples: a list of {context, reference, responses}
        examples = [example["context"] for example in (results or {}).get("examples") or []]
    else:
        examples = [pair["input"] for pair in ((results or {}).get("examples") or {}).get("reconstructions", [])]
    probe = greedy_probe(model, tokenizer, examples)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # Built beside its final place (same file system, so the rename is atomic); the name is a valid module name,
    # because trust_remote_code imports the folder's code under its folder name.
    building = Path(tempfile.mkdtemp(prefix=f"tmp_{output_dir.name}_", dir=output_dir.parent))
    try:
        model.save_pretrained(building)
        tokenizer.save_pretrained(building)
        for name in (CURVES, TRAINING_CONFIG):
            if (checkpoint_dir / name).is_file():
                shutil.copyfile(checkpoint_dir / name, building / name)
        if results is not None:
            shutil.copyfile(eval_file, building / eval_file.name)
        common = {
            "training_config": training_config,
            "validation_results": validation,
            "eval_results": results,
            "eval_results_file": eval_file.name,
            "num_parameters": model.num_parameters(),
            "has_training_curves": (building / CURVES).is_file(),
            "license": license,
        }
        config = json.loads((building / "config.json").read_text())
        if dialogue:
            card = render_dialogue_model_card(repo_id, config, example_contexts=probe["contexts"], **common)
        else:
            card = render_model_card(
                repo_id,
                config,
                eval_data_description=eval_data_description,
                example_texts=examples or probe["texts"],
                **common,
            )
        card.save(building / "README.md")
        verify_hub_folder(building, probe)
        _replace_folder(building, output_dir)
    finally:
        if building.exists():
            shutil.rmtree(building)
    return output_dir


def _replace_folder(new: Path, target: Path) -> None:
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"tmp_old_{target.name}_", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def list_files(folder: Path) -> list[tuple[str, int]]:
    files = sorted((str(path.relative_to(folder)), path.stat().st_size) for path in folder.rglob("*") if path.is_file())
    width = max(len(name) for name, _ in files)
    print(f"{folder}: {len(files)} files, {_size(sum(size for _, size in files))}")
    for name, size in files:
        print(f"  {name:<{width}}  {_size(size):>9}")
    return files


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def resolve_token() -> str:
    token = get_token()
    if not token:
        raise PublishError(
            "--push needs a Hugging Face token with write access: set HF_TOKEN, or run `hf auth login`; nothing was "
            "built or pushed."
        )
    return token


def push(folder: Path, repo_id: str, token: str, private: bool, revision: str | None, commit_message: str | None):
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=revision,
            commit_message=commit_message or f"Upload {repo_id} with twrvae's training/publish.py",
        )
    except Exception as error:  # network, authentication, permissions: all end the same way for the user
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".replace(token, "***")
        raise PublishError(
            f"the upload to {repo_id} failed ({detail}). The folder {folder} is complete and unchanged: check the "
            "network, the token's write access and the repo id, then run again with --push."
        ) from error
    return url, commit


def main(argv=None) -> Path:
    args = parse_args(argv)
    try:
        token = resolve_token() if args.push else None
        folder = build_hub_folder(
            args.checkpoint_dir,
            args.repo_id,
            output_dir=args.output_dir,
            eval_results=args.eval_results,
            eval_data_description=args.eval_data_description,
            license=args.license,
        )
        print(f"verified: {folder} loads with trust_remote_code=True without the package and gives the same text.")
        list_files(folder)
        if not args.push:
            print(f"not pushed (add --push to upload it to https://huggingface.co/{args.repo_id}).")
            return folder
        url, commit = push(folder, args.repo_id, token, args.private, args.revision, args.commit_message)
        print(f"pushed to {url}" + (f" (branch {args.revision})" if args.revision else "") + f": {commit.commit_url}")
        return folder
    except PublishError as error:
        raise SystemExit(f"publish.py: error: {error}") from None


if __name__ == "__main__":
    main()
