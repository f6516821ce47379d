"""The Hub folder of a trained model: its files (weights, remote code, tokenizer, card, results), the checks that
results belong to its weights and that an existing `--output_dir` is one this package wrote, the verification that it
loads without the package and gives the checkpoint's text, and the upload. `training/publish.py` is the command."""

from __future__ import annotations

import errno
import hashlib
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

import modeling_twrvae  # noqa: F401  (registers the model classes with AutoModel)
from modeling_twrvae import check_model_folder
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.hub.dialogue_model_card import render_dialogue_model_card
from modeling_twrvae.hub.model_card import render_model_card
from modeling_twrvae.storage.locking import FolderInUseError, locked_folder

PACKAGE = "modeling_twrvae"
CURVES = "training_curves.png"
TRAINING_CONFIG = "training_config.yaml"
VALIDATION_RESULTS = "eval_results.json"
DEFAULT_EVAL_RESULTS = "test_results.json"
PROBE_SAMPLES = 4
PROBE_TOKENS = 20
VERIFY_TIMEOUT = 600
HUB_MARKER = ".twrvae-hub-folder"  # in a Hub folder this command wrote: the files it wrote, with their SHA-256
FINGERPRINT_KEY = "weights_sha256"  # in evaluate.py's and train.py's results: the weights they were measured on


class PublishError(RuntimeError):
    """A problem that stops publishing; its message is the one line the user sees."""

    def __init__(self, message: str):
        super().__init__(" ".join(line.strip() for line in str(message).splitlines() if line.strip()))


def _valid_repo_id(repo_id: str) -> bool:
    parts = repo_id.split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return len(parts) == 2 and all(part and set(part) <= allowed and not part.startswith(".") for part in parts)


def _read_json(path: Path, what: str = "a JSON object") -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: bad JSON or bad UTF-8
        raise PublishError(f"{path} is not a readable JSON file ({error}).") from error
    if not isinstance(value, dict):
        raise PublishError(f"{path} holds a JSON {type(value).__name__}, not {what}.")
    return value


def _read_training_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        problem = str(getattr(error, "problem", None) or error)
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PublishError(
            f"{path} is not readable YAML ({problem}{where}): repair it (training/train.py writes it as a valid "
            "--config) or remove it to publish without the training settings; nothing was written."
        ) from error
    if value is not None and not isinstance(value, dict):
        raise PublishError(
            f"{path} holds a YAML {type(value).__name__}, not the mapping of settings training/train.py writes: "
            "repair it or remove it to publish without the training settings; nothing was written."
        )
    return value


def load_checkpoint(checkpoint_dir: Path):
    if not (checkpoint_dir / "config.json").is_file():
        raise PublishError(
            f"{checkpoint_dir} has no config.json: give the folder that training/train.py or save_pretrained wrote."
        )
    _read_json(checkpoint_dir / "config.json", "a model configuration")
    if not (checkpoint_dir / "tokenizer.json").is_file():
        raise PublishError(
            f"{checkpoint_dir} has no tokenizer.json: copy the whole folder that training/train.py or "
            "save_pretrained wrote (the tokenizer is saved beside the model)."
        )
    _read_json(checkpoint_dir / "tokenizer.json", "a tokenizer")  # a torn file, named (tokenizers does not name it)
    try:
        check_model_folder(checkpoint_dir)
        model = AutoModel.from_pretrained(checkpoint_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    except Exception as error:  # a damaged file raises whatever json, safetensors or tokenizers meet
        detail = str(error) if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {error}"
        raise PublishError(f"the checkpoint does not load: {detail}") from error
    return model, tokenizer


def check_results_fingerprint(results: dict, path: Path, checkpoint_dir: Path, fingerprint: str, fix: str) -> None:
    """Refuse results that were not measured on the checkpoint's weights (or do not say which weights they were)."""
    recorded = results.get(FINGERPRINT_KEY)
    if recorded == fingerprint:
        return
    if recorded is None:
        why = f"does not say which weights it was measured on (no {FINGERPRINT_KEY}: written by an older version)"
    else:
        why = (
            f"was measured on other weights than {checkpoint_dir}'s ({FINGERPRINT_KEY} {str(recorded)[:12]}..., the "
            f"checkpoint's {fingerprint[:12]}...; e.g. the model was trained again since)"
        )
    raise PublishError(f"{path} {why}, so its numbers cannot go on this model's card: {fix}; nothing was written.")


def check_output_dir(output_dir: Path, checkpoint_dir: Path) -> None:
    """Refuse an --output_dir whose replacement would delete something this command did not write."""
    target, checkpoint = output_dir.resolve(), checkpoint_dir.resolve()
    fix = "choose another --output_dir (a path that does not exist yet)"
    if target == checkpoint:
        raise PublishError(f"--output_dir {output_dir} is the checkpoint folder itself: {fix}; nothing was written.")
    if target in checkpoint.parents:
        raise PublishError(
            f"--output_dir {output_dir} holds the checkpoint {checkpoint_dir}, and the Hub folder would replace it "
            f"whole: {fix}; nothing was written."
        )
    if not output_dir.exists() and not output_dir.is_symlink():
        return
    problem = foreign_content(output_dir)
    if problem:
        raise PublishError(
            f"--output_dir {output_dir} {problem}, and publishing would replace it whole: {fix}, or remove it "
            "yourself; nothing was written."
        )


def foreign_content(folder: Path) -> str | None:
    """Why replacing `folder` could lose something (None when it is empty or a Hub folder this command wrote,
    unchanged): the files its marker lists, with the same SHA-256, and nothing else."""
    if folder.is_symlink():
        return "is a symbolic link"
    if not folder.is_dir():
        return "exists and is not a folder"
    if next(folder.iterdir(), None) is None:
        return None
    marker = folder / HUB_MARKER
    if not marker.is_file():  # before walking it: the folder may be large (a home folder given by mistake)
        return f"exists and is not a Hub folder that training/publish.py wrote (it has no {HUB_MARKER})"
    entries = sorted(folder.rglob("*"))
    try:
        written = json.loads(marker.read_text(encoding="utf-8"))["files"]
        assert isinstance(written, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return f"has a damaged {HUB_MARKER}"
    parents = {str(parent) for name in written for parent in Path(name).parents}
    for path in entries:
        name = str(path.relative_to(folder))
        if path == marker:
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            return f"holds {name}, which training/publish.py did not write"
        if path.is_dir():
            if name not in parents:
                return f"holds {name}/, which training/publish.py did not write"
        elif name not in written:
            return f"holds {name}, which training/publish.py did not write"
        elif _sha256(path) != written[name]:
            return f"holds {name}, which was changed since training/publish.py wrote it"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(folder: Path, repo_id: str) -> None:
    files = {str(path.relative_to(folder)): _sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()}
    text = json.dumps({"written_by": "training/publish.py", "repo_id": repo_id, "files": files}, indent=2)
    (folder / HUB_MARKER).write_text(text + "\n", encoding="utf-8")


def _folder_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


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


# Run by a fresh, isolated interpreter (`-I`: no PYTHONPATH, no script or working folder on the path) in which a
# finder refuses the package (an installed copy too), so the folder's own files are all the model can come from.
_VERIFY_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys
    folder, probe_file, package = sys.argv[1:4]

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
                [sys.executable, "-I", "-c", _VERIFY_SCRIPT, str(folder.resolve()), str(probe_file), PACKAGE],
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
    license: str | None = None,
) -> Path:
    """Build, verify and atomically put in place the Hub folder of a checkpoint; returns its path.

    Everything is read and checked before anything is written. The folder that holds `output_dir` is then locked
    (`locked_folder`) while the Hub folder is built beside its final place and renamed into it."""
    checkpoint_dir = Path(checkpoint_dir)
    output_dir = Path(output_dir) if output_dir else checkpoint_dir / "hub"
    check_output_dir(output_dir, checkpoint_dir)

    fingerprint = weights_fingerprint(checkpoint_dir)
    eval_file = Path(eval_results) if eval_results else checkpoint_dir / DEFAULT_EVAL_RESULTS
    if eval_results and not eval_file.is_file():
        raise PublishError(f"--eval_results {eval_file} does not exist; run training/evaluate.py first.")
    results = _read_json(eval_file, "the results of training/evaluate.py") if eval_file.is_file() else None
    validation_file = checkpoint_dir / VALIDATION_RESULTS
    validation = _read_json(validation_file, "validation results") if validation_file.is_file() else None
    training_config = _read_training_config(checkpoint_dir / TRAINING_CONFIG)
    model, tokenizer = load_checkpoint(checkpoint_dir)
    if fingerprint is None:  # load_checkpoint refuses a folder without weights; this is the belt to its braces
        raise PublishError(f"{checkpoint_dir} holds no weight files (*.safetensors); nothing was written.")
    if weights_fingerprint(checkpoint_dir) != fingerprint:
        raise PublishError(
            f"the weights in {checkpoint_dir} changed while they were read (is training/train.py still writing "
            "there?): publish once it has finished; nothing was written."
        )
    if results is not None:
        check_results_fingerprint(
            results,
            eval_file,
            checkpoint_dir,
            fingerprint,
            f"evaluate this checkpoint again (training/evaluate.py --model_name_or_path {checkpoint_dir} ... "
            f"--output_file {eval_file})"
            + ("" if eval_results else ", or move the file away to publish without test results"),
        )
    if validation is not None:
        check_results_fingerprint(
            validation,
            validation_file,
            checkpoint_dir,
            fingerprint,
            "move it away to publish without validation results (training/train.py writes it with the best model)",
        )

    dialogue = model.config.model_type == DIALOGUE_MODEL_TYPE
    try:
        if dialogue:  # evaluate.py's dialogue examples: a list of {context, reference, responses}
            examples = [list(example["context"]) for example in (results or {}).get("examples") or []]
        else:
            pairs = ((results or {}).get("examples") or {}).get("reconstructions", [])
            examples = [str(pair["input"]) for pair in pairs]
    except (TypeError, KeyError, AttributeError) as error:
        raise PublishError(
            f"{eval_file} is not the JSON training/evaluate.py writes (its examples: {type(error).__name__}: {error})"
            "; run training/evaluate.py again; nothing was written."
        ) from error
    probe = greedy_probe(model, tokenizer, examples)

    target = Path(os.path.abspath(output_dir))  # "." and "hub" have a real parent to build beside and to lock
    try:
        with locked_folder(target.parent, "training/publish.py"):
            check_output_dir(output_dir, checkpoint_dir)  # again, now that no other publish can write there
            _build_and_replace(
                model,
                tokenizer,
                probe,
                checkpoint_dir,
                repo_id,
                target,
                examples,
                card_inputs={
                    "training_config": training_config,
                    "validation_results": validation,
                    "eval_results": results,
                    "eval_results_file": eval_file.name,
                    "num_parameters": model.num_parameters(),
                    "license": license,
                },
                eval_file=eval_file if results is not None else None,
                eval_data_description=eval_data_description,
            )
    except FolderInUseError as error:
        raise PublishError(f"{error.strerror}; nothing was written.") from error
    except OSError as error:
        raise PublishError(_write_error(error, output_dir)) from error
    return output_dir


def _write_error(error: OSError, output_dir: Path) -> str:
    where = error.filename or Path(os.path.abspath(output_dir)).parent
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the disk is full: could not write the Hub folder {output_dir} ({where}). Nothing was written (the "
            "half-built folder was removed): free some space and run again."
        )
    return (
        f"could not write the Hub folder {output_dir} ({error.strerror or error}: {where}): choose an --output_dir "
        "in a folder you can write to; nothing was written."
    )


def _build_and_replace(
    model,
    tokenizer,
    probe,
    checkpoint_dir,
    repo_id,
    output_dir,
    examples,
    card_inputs,
    eval_file,
    eval_data_description,
) -> None:
    # Built beside its final place (same file system, so the rename is atomic); the name is a valid module name,
    # because trust_remote_code imports the folder's code under its folder name.
    building = Path(tempfile.mkdtemp(prefix=f"tmp_{output_dir.name}_", dir=output_dir.parent))
    try:
        os.chmod(building, _folder_mode())  # mkdtemp's folder is private (700); the Hub folder is not
        model.save_pretrained(building)
        tokenizer.save_pretrained(building)
        for name in (CURVES, TRAINING_CONFIG):
            if (checkpoint_dir / name).is_file():
                shutil.copyfile(checkpoint_dir / name, building / name)
        if eval_file is not None:
            # the results now sit beside the folder's own weights: say so, if their bytes differ from the checkpoint's
            published = weights_fingerprint(building)
            if published == card_inputs["eval_results"][FINGERPRINT_KEY]:
                shutil.copyfile(eval_file, building / eval_file.name)
            else:
                copy = {**card_inputs["eval_results"], FINGERPRINT_KEY: published}
                (building / eval_file.name).write_text(json.dumps(copy, indent=2) + "\n", encoding="utf-8")
        common = {**card_inputs, "has_training_curves": (building / CURVES).is_file()}
        config = json.loads((building / "config.json").read_text())
        if model.config.model_type == DIALOGUE_MODEL_TYPE:
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
        _write_marker(building, repo_id)
        _replace_folder(building, output_dir)
    finally:
        if building.exists():
            shutil.rmtree(building)


def _replace_folder(new: Path, target: Path) -> None:
    """Put `new` in `target`'s place; an existing `target` (checked by `check_output_dir`) is moved aside first and
    removed only once `new` is in place."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"tmp_old_{target.name}_", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def list_files(folder: Path) -> list[tuple[str, int]]:
    """Print (and return) the files that a push uploads: all but the hidden marker."""
    files = sorted(
        (str(path.relative_to(folder)), path.stat().st_size)
        for path in folder.rglob("*")
        if path.is_file() and path.name != HUB_MARKER
    )
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
            ignore_patterns=[HUB_MARKER],  # this machine's record of what it wrote, not part of the repository
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
