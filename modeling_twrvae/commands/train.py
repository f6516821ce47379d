"""Train a model of the TWR-VAE family on a corpus, on one CPU, one GPU or many (DDP, FSDP, DeepSpeed).

    python training/train.py --config demo --data_dir ../shared/data
    accelerate launch training/train.py --config ptb/twr-vae          # GPUs, `accelerate config`
    torchrun --nproc_per_node 2 training/train.py --config demo      # several CPU processes

Arguments follow transformers' example scripts; `--config FILE.yaml` gives defaults that the command line
overrides. The best model on the validation split (lowest -ELBO, with the KL of the decoded latent) is saved to
`--output_dir` with `save_pretrained`, with its tokenizer, generation config, the resolved training configuration
(`training_config.yaml`, a valid `--config`) and the validation metrics (`eval_results.json`); `metrics.jsonl` logs
every step's numbers and `training_curves.png` plots them. `accelerator.save_state` checkpoints go to
`--output_dir/checkpoint-STEP`, and `--resume_from_checkpoint PATH|latest` continues a run exactly.

The output folder is locked for the whole run (a second run on it fails at once, naming the first); a folder that
holds anything but an earlier run of this script needs `--overwrite_output_dir`, which removes only what this script
writes. Each checkpoint keeps the best model of its time (`best_model/`, hard links), so that a resume from it
restores the best model and `eval_results.json` of that point of the run; `eval_results.json` names the weights it
was measured on (`weights_sha256`). A resume with settings that would change the run is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import datasets
import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoTokenizer, DataCollatorWithPadding, get_scheduler

from modeling_twrvae import (
    CVAE_PRESETS,
    TWRCVAEConfig,
    TWRCVAEModel,
    TWRVAEConfig,
    TWRVAEModel,
    check_tokenizer,
    train_tokenizer,
)
from modeling_twrvae.checkpoint_checks import FINGERPRINT_KEY, vocabulary_fingerprint
from modeling_twrvae.data.corpora import CORPORA, DATA_DIR_ENV, check_local_path, load_corpus
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA
from modeling_twrvae.data.length_grouping import LengthGroupedBatchSampler
from modeling_twrvae.file_utils import (
    LOCK_FILE,
    LOCK_OWNER_FILE,
    TEMPORARY_SUFFIX,
    WEIGHT_SUFFIXES,
    atomic_write_json,
    atomic_write_text,
    disk_full_error,
    fsync_folder,
    locked_folder,
    move_files_into,
    remove_temporary_leftovers,
    weights_fingerprint,
)
from modeling_twrvae.tokenization_twrvae import PRE_TOKENIZATIONS
from modeling_twrvae.trainer import tasks as dialogue_task
from modeling_twrvae.trainer.errors import run_main
from modeling_twrvae.trainer.kl_schedules import SCHEDULES, KLSchedule
from modeling_twrvae.trainer.memory import reuse_freed_memory
from modeling_twrvae.trainer.plots import plot_training_curves
from modeling_twrvae.trainer.shipped_configs import resolve_config

logger = get_logger(__name__)
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
FUSED_ADAM_DEVICES = ("cpu", "cuda")
CHECKPOINT_TOKENIZER = "tokenizer"  # the tokenizer the run trained, saved in every checkpoint and reused on resume
RNG_STATE = "random_states_{}.pkl"  # accelerate's name for process i's RNG states
RNG_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")
COMMAND = "training/train.py"
INTERRUPTED = "interrupted; resume with --resume_from_checkpoint latest"

# What train.py writes into --output_dir. `--overwrite_output_dir` removes these and nothing else.
RUN_MARKER = ".twrvae_train.json"  # says the folder holds a run of this script, and which files are its best model
LOG_FILE = "metrics.jsonl"
CURVES_FILE = "training_curves.png"
EVAL_RESULTS = "eval_results.json"
WEIGHTS_KEY = "weights_sha256"  # in eval_results.json: `weights_fingerprint` of the weights it was measured on
TRACKER_PROJECT = "twrvae"  # the trackers' folder (tensorboard's logs)
BEST_MODEL_COPY = "best_model"  # in each checkpoint: the best model so far (hard links to the saved one)
RUN_FILES = (RUN_MARKER, LOG_FILE, CURVES_FILE)
MODEL_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
    "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "training_config.yaml", EVAL_RESULTS,
}  # fmt: skip
# the remote code save_pretrained copies beside config.json: a model's files only where there is a model
CODE_FILES = {path.name for path in Path(__file__).resolve().parents[1].glob("*.py")}
WEIGHT_SHARD = re.compile(r"^(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$")
# training/evaluate.py's results (its --output_file, default eval_SPLIT.json, and its .md and .png)
RESULT_FILE = re.compile(r"^(test_results|eval_[\w.-]+)\.(json|md|png)$")


class NonFiniteLossError(RuntimeError):
    pass


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed exactly: the message names it and the one to use instead."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config",
        help="YAML file of argument values, or the name of a shipped one (`demo`, `ptb/twr-vae`, ...); the command "
        "line overrides them.",
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=sorted(CORPORA) + sorted(DIALOGUE_CORPORA),
        help="A corpus known by name, read from --data_dir (dailydialog, switchboard: the dialogue task).",
    )
    data.add_argument("--data_dir", default=None, help=f"Folder of the named corpora (default: ${DATA_DIR_ENV}).")
    data.add_argument("--train_split", default="train", help="Split of --dataset to train on.")
    data.add_argument("--validation_split", default="validation", help="Split of --dataset to validate on.")
    data.add_argument("--dataset_name", help="A Hub dataset, for text not known by name.")
    data.add_argument("--dataset_config_name", help="The configuration of --dataset_name.")
    data.add_argument("--train_file", help="Local training text: .txt (a text a line), .csv/.tsv or .json/.jsonl.")
    data.add_argument("--validation_file", help="Local validation text, as --train_file.")
    data.add_argument("--text_column", help="Column holding the text in CSV, JSON or Hub data.")
    data.add_argument(
        "--validation_split_percentage",
        type=float,
        help="Hold out this percentage of the training split for validation instead of loading a validation split.",
    )
    data.add_argument("--max_train_samples", type=int, help="Use only the first N training texts.")
    data.add_argument("--max_eval_samples", type=int, help="Use only the first N validation texts.")
    data.add_argument("--max_length", type=int, default=100, help="Longer texts are truncated (tokens, with specials).")

    tokenizer = parser.add_argument_group("tokenizer")
    tokenizer.add_argument("--tokenizer_name", help="Reuse this tokenizer (folder or Hub id) instead of training one.")
    tokenizer.add_argument("--vocab_size", type=int, help="Vocabulary size (default: the corpus's, else 20000).")
    tokenizer.add_argument("--min_frequency", type=int, help="Words seen fewer times become <unk> (default 1).")
    tokenizer.add_argument(
        "--pre_tokenization",
        choices=PRE_TOKENIZATIONS,
        help="How text is cut into words: on white space (tokenised corpora), also at every punctuation mark (raw "
        "text; E2E's default), or as the papers' code does (their corpus configs). Default: the corpus's, else "
        "whitespace.",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="Continue from this checkpoint instead of a fresh model.")
    model.add_argument(
        "--preset",
        default="twr-vae",
        choices=TWRVAEConfig.presets() + TWRCVAEConfig.presets(),
        help="Model of the papers (twr-cvae, cvae: dialogue response generation).",
    )
    model.add_argument(
        "--config_overrides",
        type=_overrides,
        default={},
        help='TWRVAEConfig fields over the preset, e.g. "hidden_size=128,latent_size=16" (a mapping in YAML).',
    )
    model.add_argument("--word_dropout", type=float, help="Word dropout rate of the decoder (config field).")

    optim = parser.add_argument_group("optimisation (defaults: the TWR-VAE paper)")
    optim.add_argument("--per_device_train_batch_size", type=int, default=64)
    optim.add_argument("--per_device_eval_batch_size", type=int, default=64)
    optim.add_argument("--learning_rate", type=float, default=1e-4)
    optim.add_argument("--weight_decay", type=float, default=1e-5)
    optim.add_argument("--adam_beta1", type=float, default=0.9)
    optim.add_argument("--adam_beta2", type=float, default=0.999)
    optim.add_argument("--adam_epsilon", type=float, default=1e-6)
    optim.add_argument("--max_grad_norm", type=float, help="Clip gradients to this norm (default: no clipping).")
    optim.add_argument(
        "--loss_reduction",
        choices=["mean", "sum"],
        default="mean",
        help="Minimise the loss averaged over the sentences of an update (mean) or summed over them (sum), as the "
        "papers' code does: with Adam's coupled weight decay and eps, the two are different problems.",
    )
    optim.add_argument("--num_train_epochs", type=int, default=30)
    optim.add_argument("--max_train_steps", type=int, help="Optimiser updates; overrides --num_train_epochs.")
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--lr_scheduler_type", default="constant", help="A transformers scheduler name.")
    optim.add_argument("--num_warmup_steps", type=int, default=0)
    optim.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], help="Default: `accelerate config`'s.")
    optim.add_argument("--seed", type=int, default=42)
    optim.add_argument("--use_cpu", action="store_true", help="Train on the CPU even where a GPU is available.")

    kl = parser.add_argument_group("KL term")
    kl.add_argument("--kl_schedule", choices=SCHEDULES, default="constant")
    kl.add_argument("--kl_weight", type=float, default=1.0, help="The KL weight (its maximum when annealed).")
    kl.add_argument("--kl_anneal_steps", type=int, default=10000, help="Steps of linear/sigmoid annealing.")
    kl.add_argument(
        "--kl_start_weight",
        type=float,
        default=0.0,
        help="Where linear annealing starts (0.1 in TWR-VAE's dialogue code).",
    )
    kl.add_argument("--kl_cycles", type=int, default=4, help="Cycles of cyclical annealing.")
    kl.add_argument("--kl_cycle_ratio", type=float, default=0.5, help="Share of a cycle spent increasing.")
    kl.add_argument("--free_bits", type=float, default=0.0, help="Free bits per latent dimension (nats).")
    kl.add_argument(
        "--sample_posterior",
        type=_bool,
        default=True,
        help="Decode from a posterior sample while training (false: from its mean, a plain autoencoder).",
    )

    run = parser.add_argument_group("evaluation, checkpoints, logging")
    run.add_argument("--output_dir", help="Where the model, logs and checkpoints go (required).")
    run.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Start afresh in a used --output_dir: removes what train.py wrote there (its model, checkpoints, logs, "
        "results), never other files.",
    )
    run.add_argument("--eval_steps", type=int, help="Validate every N updates (default: each epoch).")
    run.add_argument("--early_stopping_patience", type=int, help="Stop after N validations without improvement.")
    run.add_argument("--checkpointing_steps", type=int, help="Save the training state every N updates.")
    run.add_argument("--save_total_limit", type=int, default=2, help="Keep this many newest checkpoints.")
    run.add_argument(
        "--resume_from_checkpoint",
        help="A checkpoint folder, or `latest` in --output_dir; the run's settings, but for those a resume may change.",
    )
    run.add_argument("--logging_steps", type=int, default=10)
    run.add_argument("--report_to", default="none", help="Trackers: `tensorboard`, `wandb`, ..., `all` or `none`.")
    return parser


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _overrides(value) -> dict:
    if isinstance(value, dict):
        return value
    result = {}
    for item in filter(None, (part.strip() for part in str(value).split(","))):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--config_overrides wants key=value pairs, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            result[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise argparse.ArgumentTypeError(f"--config_overrides {item!r}: not a value ({error})") from None
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--config")
    known, _ = config_parser.parse_known_args(argv)
    yaml_overrides = {}
    if known.config:
        values = _read_config_file(known.config, parser)
        yaml_overrides = _overrides(values.get("config_overrides") or {})
        parser.set_defaults(**values)
    args = parser.parse_args(argv)
    if not args.output_dir:
        parser.error("--output_dir is required (on the command line or in --config).")
    # the command line's fields go over the YAML's, field by field
    args.config_overrides = {**yaml_overrides, **_overrides(args.config_overrides)}
    if args.word_dropout is not None:
        args.config_overrides["word_dropout"] = args.word_dropout
    dialogue = args.preset in CVAE_PRESETS or args.dataset in DIALOGUE_CORPORA
    config_class = TWRCVAEConfig if dialogue else TWRVAEConfig
    check_config_fields(args.config_overrides, parser, config_class)
    args.config_overrides = typed_overrides(args.config_overrides, parser, config_class)
    check_ranges(args, parser)
    check_model_config(args, parser, config_class)
    if args.overwrite_output_dir and args.resume_from_checkpoint and checkpoint_is_inside(args):
        parser.error(
            f"--overwrite_output_dir would remove the earlier run in {args.output_dir} whose checkpoint "
            f"--resume_from_checkpoint {args.resume_from_checkpoint} continues: pass one or the other."
        )
    return args


def _read_config_file(path: str, parser: argparse.ArgumentParser) -> dict:
    """The settings of a YAML `--config`, each checked as strictly as the command line checks it."""
    try:
        with open(resolve_config(path), encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except FileNotFoundError as error:
        parser.error(str(error))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        parser.error(f"--config {path} is not valid YAML: {error}")
    values = values or {}
    if not isinstance(values, dict):
        parser.error(
            f"--config {path} must hold a mapping of settings (`name: value` lines), got {type(values).__name__}."
        )
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        hints = [
            f"{name} (did you mean {', '.join(close)}?)" if (close := _close(name, actions)) else name
            for name in unknown
        ]
        parser.error(f"--config {path}: unknown setting(s) {unknown}: {'; '.join(hints)}. See --help.")
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = _check_yaml_value(actions[name], value)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            parser.error(f"--config {path}: setting {name!r}: {error}")
    return checked


def _check_yaml_value(action: argparse.Action, value):
    if value is None:
        return None
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
    elif action.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
    elif action.type is not None:
        value = action.type(value)
    elif isinstance(value, (dict, list)):
        raise ValueError(f"expected a single value, got {value!r}")
    else:
        value = str(value)
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{value!r} is not one of {sorted(action.choices)}")
    return value


def _close(name: str, known) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)


def config_fields(config_class=TWRVAEConfig) -> set[str]:
    """The fields `--config_overrides` may set: those the model's configuration class declares."""
    fields = set()
    for cls in config_class.__mro__:
        if cls.__name__ == "PretrainedConfig":
            break
        fields.update(getattr(cls, "__annotations__", {}))
    return fields


def check_config_fields(overrides: dict, parser: argparse.ArgumentParser, config_class=TWRVAEConfig) -> None:
    fields = config_fields(config_class)
    for name in sorted(set(overrides) - fields):
        close = _close(name, fields)
        parser.error(
            f"--config_overrides: {config_class.__name__} has no field {name!r}"
            + (
                f"; did you mean {' or '.join(repr(c) for c in close)}?"
                if close
                else f"; its fields: {sorted(fields)}."
            )
        )


def typed_overrides(overrides: dict, parser: argparse.ArgumentParser, config_class=TWRVAEConfig) -> dict:
    """The overrides as the types of the configuration's fields: YAML reads `1e-1` (no dot) as a string, which is
    the number 0.1 for a float field; a value that is not of the field's type is a usage error."""
    annotations = {}
    for cls in reversed(config_class.__mro__):
        annotations.update(getattr(cls, "__annotations__", {}))
    typed = {}
    for name, value in overrides.items():
        kind = str(annotations.get(name, "")).split("|")[0].strip()
        if value is not None and kind in ("int", "float"):
            number = None
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    number = int(value) if kind == "int" else float(value)
            elif not isinstance(value, bool) and isinstance(value, (int, float)):
                number = float(value) if kind == "float" else (value if isinstance(value, int) else None)
            if number is None:
                parser.error(
                    f"--config_overrides {name}={value!r}: expected {'an integer' if kind == 'int' else 'a number'}."
                )
            value = number
        typed[name] = value
    return typed


def _size_defaults(args) -> dict:
    """The vocabulary size the tokenizer is asked for (the run's, before the data is read)."""
    if args.vocab_size:
        return {"vocab_size": args.vocab_size}
    defaults = dict(CORPORA[args.dataset].tokenizer) if args.dataset in CORPORA else {}
    defaults.update(dialogue_task.tokenizer_defaults(args.dataset))
    return {"vocab_size": defaults.get("vocab_size", 20000)}


def planned_config(args, config_class=TWRVAEConfig):
    """The configuration the run will build (its vocabulary size is the tokenizer's, known only once it is trained:
    here the size asked for), or None when it comes from --model_name_or_path."""
    if args.model_name_or_path:
        return None
    preset = dialogue_task.preset(args) if config_class is TWRCVAEConfig else args.preset
    return config_class.from_preset(preset, **_size_defaults(args), **args.config_overrides)


def check_model_config(args, parser: argparse.ArgumentParser, config_class=TWRVAEConfig) -> None:
    """Refuse, before any data is read, a configuration that the run could not build."""
    if "vocab_size" in args.config_overrides:
        parser.error(
            "--config_overrides vocab_size: the model's vocabulary size is its tokenizer's (config.vocab_size = "
            "len(tokenizer)); ask for a vocabulary of that size with --vocab_size N instead."
        )
    try:
        planned_config(args, config_class)
    except (ValueError, TypeError) as error:
        parser.error(f"--config_overrides {_describe(args.config_overrides)} with --preset {args.preset}: {error}")


def _describe(overrides: dict) -> str:
    return ",".join(f"{key}={value}" for key, value in overrides.items()) or "(none)"


def machine_memory() -> tuple[int, str]:
    """Bytes of memory a model could be trained in on this machine: its RAM and the memory of its GPUs."""
    total, where = 0, []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        where.append("RAM")
    if torch.cuda.is_available():
        total += sum(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))
        where.append(f"{torch.cuda.device_count()} GPU(s)")
    return total, " and ".join(where) or "memory"


def check_model_size(args) -> None:
    """Refuse sizes the machine cannot train (e.g. hidden_size=10**12) before any data is read: the parameters are
    counted on the `meta` device, which allocates nothing."""
    dialogue = args.preset in CVAE_PRESETS or args.dataset in DIALOGUE_CORPORA
    config = planned_config(args, TWRCVAEConfig if dialogue else TWRVAEConfig)
    if config is None:
        return
    model_class = TWRCVAEModel if dialogue else TWRVAEModel
    sizes = f"--config_overrides {_describe(args.config_overrides)} (vocabulary {config.vocab_size})"
    try:
        with torch.device("meta"):
            parameters = model_class(config).num_parameters()
    except RuntimeError as error:  # a weight of more entries than a tensor can index
        raise ValueError(f"{sizes}: the model's weights would not fit in a tensor ({_brief(error)}).") from None
    needed = 16 * parameters  # fp32 weights, their gradients and Adam's two moments
    available, where = machine_memory()
    if available and needed > available:
        raise ValueError(
            f"{sizes} makes a model of {parameters:,} parameters: training it takes about {needed / 1e9:,.0f} GB "
            f"(fp32 weights, gradients and Adam's two moments, 16 bytes a parameter), more than this machine's "
            f"{available / 1e9:,.0f} GB ({where}). Choose smaller sizes."
        )


POSITIVE = (
    "per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs", "max_train_steps",
    "gradient_accumulation_steps", "logging_steps", "eval_steps", "checkpointing_steps", "early_stopping_patience",
    "max_train_samples", "max_eval_samples", "kl_anneal_steps", "kl_cycles", "vocab_size", "min_frequency",
)  # fmt: skip
NON_NEGATIVE = ("learning_rate", "weight_decay", "adam_epsilon", "num_warmup_steps", "save_total_limit", "kl_weight",
                "free_bits", "max_grad_norm")  # fmt: skip


def check_ranges(args, parser: argparse.ArgumentParser) -> None:
    for name in POSITIVE:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}.")
    for name in NON_NEGATIVE:
        value = getattr(args, name)
        if value is not None and (value < 0 or not math.isfinite(value)):
            parser.error(f"--{name} must be a finite number >= 0, got {value}.")
    if args.validation_split_percentage is not None and not 0 < args.validation_split_percentage < 100:
        parser.error(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}.")
    if args.max_length < 3:
        parser.error(f"--max_length must be >= 3 (<bos>, a word, <eos>), got {args.max_length}.")
    if args.word_dropout is not None and not 0 <= args.word_dropout <= 1:
        parser.error(f"--word_dropout must be in [0, 1], got {args.word_dropout}.")
    if not 0 <= args.kl_start_weight <= args.kl_weight:
        parser.error(f"--kl_start_weight must be in [0, --kl_weight={args.kl_weight}], got {args.kl_start_weight}.")
    if args.kl_start_weight and args.kl_schedule != "linear":
        parser.error(f"--kl_start_weight applies to --kl_schedule linear only, not {args.kl_schedule}.")
    if not 0 < args.kl_cycle_ratio <= 1:
        parser.error(f"--kl_cycle_ratio must be in (0, 1], got {args.kl_cycle_ratio}.")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            parser.error(f"--{name} must be in [0, 1), got {getattr(args, name)}.")
    if args.learning_rate == 0:
        warnings.warn("--learning_rate is 0: the weights will not change.", stacklevel=2)


def load_splits(args) -> dict:
    holdout = args.validation_split_percentage is not None
    if holdout and not 0 < args.validation_split_percentage < 100:
        raise ValueError(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}.")
    splits, files = {"train": args.train_split}, {"train": args.train_file}
    if not holdout:
        splits["validation"], files["validation"] = args.validation_split, args.validation_file
    raw = load_corpus(
        splits,
        dataset=args.dataset,
        data_dir=args.data_dir,
        files=files,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        text_column=args.text_column,
    )
    if holdout:
        parts = raw["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        raw = {"train": parts["train"], "validation": parts["test"]}
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
    if args.max_eval_samples:
        raw["validation"] = raw["validation"].select(range(min(args.max_eval_samples, len(raw["validation"]))))
    return raw


def get_tokenizer(args, train_texts, checkpoint: Path | None = None):
    """The checkpoint's tokenizer when resuming (the word ids the weights were trained with), a given one, or one
    trained on the training split."""
    if checkpoint is not None:
        folder = checkpoint / CHECKPOINT_TOKENIZER
        if folder.is_dir():
            return AutoTokenizer.from_pretrained(folder)
        logger.warning(f"{checkpoint} has no saved tokenizer (an older checkpoint): training it again from the data")
    source = args.tokenizer_name or args.model_name_or_path
    if source:
        check_local_path(source, "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path")
        return AutoTokenizer.from_pretrained(source)
    defaults = dict(CORPORA[args.dataset].tokenizer) if args.dataset in CORPORA else {}
    defaults.update(dialogue_task.tokenizer_defaults(args.dataset))
    for key in ("vocab_size", "min_frequency", "pre_tokenization"):
        if getattr(args, key) is not None:
            defaults[key] = getattr(args, key)
    defaults.setdefault("vocab_size", 20000)
    tokenizer = train_tokenizer(train_texts, model_max_length=args.max_length, **defaults)
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise ValueError(
            f"The training text gives a vocabulary of only the {len(tokenizer)} special tokens: every word is seen "
            f"fewer than min_frequency={defaults.get('min_frequency', 1)} times, so every word would be <unk>. Train "
            "on more text, or lower --min_frequency."
        )
    return tokenizer


def loss_scale(args, accelerator, batch_size: int) -> float:
    """What turns the batch-averaged loss into the one to differentiate: 1, or the number of sentences that the
    update sums over. Processes' gradients are averaged and accumulated micro-batches divided by their count, so a
    sum over the whole update is this process's sum times both counts."""
    if args.loss_reduction == "mean":
        return 1.0
    return float(batch_size * accelerator.num_processes * args.gradient_accumulation_steps)


def tokenize(dataset, tokenizer, max_length: int, name: str):
    """Token ids with `<bos>`/`<eos>`; longer texts keep their first max_length - 1 tokens and `<eos>`."""
    if max_length < 3:
        raise ValueError(f"--max_length must be >= 3 (<bos>, a word, <eos>), got {max_length}.")
    eos = tokenizer.eos_token_id

    def encode(batch):
        ids = tokenizer(batch["text"], verbose=False)["input_ids"]  # longer texts are cut below, and counted
        truncated = [len(row) > max_length for row in ids]
        ids = [row[: max_length - 1] + [eos] if cut else row for row, cut in zip(ids, truncated, strict=True)]
        return {"input_ids": ids, "length": [len(row) for row in ids], "truncated": truncated}

    encoded = dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc=f"tokenizing {name}")
    count = sum(encoded["truncated"])
    if count:
        logger.info(f"{count} of {len(encoded)} {name} texts were longer than --max_length={max_length} and truncated")
    return encoded.remove_columns("truncated"), count


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int, collator):
    sampler = LengthGroupedBatchSampler(dataset["length"], batch_size=batch_size, shuffle=shuffle, seed=seed)
    # A generator of its own: a DataLoader otherwise draws from the global RNG each time it starts an epoch, which
    # would shift the dropout and sampling noise of a resumed run.
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset.remove_columns("length"), batch_sampler=sampler, collate_fn=collator, generator=generator
    )
    return loader, sampler


@torch.no_grad()
def evaluate(model, loader, accelerator, seed: int) -> dict:
    """The honest -ELBO (decoded latent's KL, one posterior sample per text) on the validation split."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)
    count = tokens = 0
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # a fixed sample, and the training RNG stream left untouched
        torch.manual_seed(seed)
        for batch in loader:
            output = model(**batch, sample_posterior=True, reduction="none", return_logits=False)
            values = torch.stack(
                [
                    output.reconstruction_loss,
                    output.kl_decoded,
                    output.kl_regularizer,
                    batch["attention_mask"].sum(1) - 1,
                ]
            ).T.float()
            values = accelerator.gather_for_metrics(values).double().cpu()
            sums += values.sum(0)
            count += values.shape[0]
            tokens += int(values[:, 3].sum())
    model.train()
    reconstruction, kl_decoded, kl_regularizer, _ = (sums / count).tolist()
    return {
        "elbo_nll": reconstruction + kl_decoded,
        "elbo_ppl": math.exp((sums[0] + sums[1]).item() / tokens),
        "reconstruction_loss": reconstruction,
        "kl_decoded": kl_decoded,
        "kl_regularizer": kl_regularizer,
        "num_sentences": count,
        "num_predicted_tokens": tokens,
    }


def build_optimizer(model, args, device: torch.device) -> torch.optim.Adam:
    """The papers' Adam. Its fused kernel updates all tensors in one pass (on a 2-core CPU about 8x faster than
    the per-tensor loop over the two 10k x 512 embedding tables), where the device has one."""
    return torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        fused=device.type in FUSED_ADAM_DEVICES or None,
    )


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    found = []
    if output_dir.is_dir():
        for path in output_dir.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match and (path / TRAINER_STATE).is_file():  # only complete ones
                found.append((int(match.group(1)), path))
    return sorted(found)


def resolve_checkpoint(value: str, output_dir: Path) -> Path:
    if value == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(f"--resume_from_checkpoint latest: no complete checkpoint in {output_dir}.")
        return checkpoints[-1][1]
    path = Path(value)
    if not (path / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {TRAINER_STATE}); pick another or `latest`.")
    return path


def _previous_checkpoint(checkpoint: Path, output_dir: Path) -> str:
    earlier = [
        path
        for step, path in list_checkpoints(output_dir)
        if path.resolve() != checkpoint.resolve() and step < _checkpoint_step(checkpoint)
    ]
    if earlier:
        return f"Resume from the previous one instead: --resume_from_checkpoint {earlier[-1]}"
    return "There is no earlier checkpoint: start afresh with --overwrite_output_dir"


def _checkpoint_step(checkpoint: Path) -> int:
    match = CHECKPOINT_PATTERN.match(checkpoint.name)
    return int(match.group(1)) if match else 1 << 62


def read_checkpoint(checkpoint: Path, output_dir: Path, num_processes: int) -> dict:
    """The trainer state of `checkpoint`, after checking that what an exact resume needs is there and readable."""
    from accelerate.utils import load as accelerate_load

    def broken(what: str) -> CheckpointError:
        return CheckpointError(
            f"Checkpoint {checkpoint} cannot be resumed exactly: {what}. {_previous_checkpoint(checkpoint, output_dir)}."
        )

    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
        int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise broken(f"{TRAINER_STATE} is unreadable ({error})") from error
    for index in range(num_processes):
        rng_file = checkpoint / RNG_STATE.format(index)
        if not rng_file.is_file():
            raise broken(
                f"its random-number state {rng_file.name} is missing (the resumed run would not repeat the "
                "uninterrupted run's dropout and sampling)"
            )
        try:
            rng = accelerate_load(rng_file)
            missing = [key for key in RNG_KEYS if key not in rng]
        except Exception as error:  # a damaged pickle raises whatever its bytes lead to
            raise broken(f"its random-number state {rng_file.name} is corrupt ({_brief(error)})") from error
        if missing:
            raise broken(f"its random-number state {rng_file.name} lacks {missing}")
    return state


def load_checkpoint(accelerator, checkpoint: Path, output_dir: Path) -> None:
    try:
        accelerator.load_state(str(checkpoint))
    except Exception as error:  # a torn or damaged file raises whatever torch or safetensors meet
        raise CheckpointError(
            f"Checkpoint {checkpoint} could not be loaded ({_brief(error)}). It is damaged or was "
            f"written by another setting. {_previous_checkpoint(checkpoint, output_dir)}."
        ) from error


def _brief(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def remove_later_checkpoints(output_dir: Path, step: int) -> None:
    """Resuming from step N abandons what came after it: later checkpoints would otherwise be taken for this run's
    by `--resume_from_checkpoint latest` (and their steps mixed into metrics.jsonl)."""
    for later_step, path in list_checkpoints(output_dir):
        if later_step > step:
            logger.warning(f"removing {path}: it continues the run past step {step}, which this resume replaces")
            shutil.rmtree(path)


def unshare_flattened_weights(models, weights, output_dir) -> None:
    """accelerate's `save_state` hook: give every tensor of the state dicts a storage of its own.

    On a GPU, cuDNN packs each RNN's weights and biases into one buffer, and accelerate's safetensors writer takes
    tensors that share a storage for tied copies and keeps only the first: checkpoints lost all but `weight_ih_l0`
    of every LSTM (seen on an H200). Copying the tensors that share a storage keeps them all."""
    for state_dict in weights:
        seen = set()
        for name, tensor in state_dict.items():
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = (tensor.device, tensor.untyped_storage().data_ptr())
            if storage in seen:
                state_dict[name] = tensor.clone()
            seen.add(storage)


def save_checkpoint(accelerator, output_dir: Path, step: int, state: dict, limit: int | None, tokenizer) -> Path:
    final = output_dir / f"checkpoint-{step}"
    temporary = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            tokenizer.save_pretrained(temporary / CHECKPOINT_TOKENIZER)
            if state.get("best_step") is not None:  # a resume from here restores it (restore_best_model)
                best = [p.name for p in _model_files_in(output_dir)]
                link_or_copy_files(output_dir, temporary / BEST_MODEL_COPY, best)
            for path in temporary.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            atomic_write_json(temporary / TRAINER_STATE, state)  # written last: it marks the checkpoint complete
            if final.exists():
                shutil.rmtree(final)
            os.replace(temporary, final)
            fsync_folder(output_dir)
            if limit:
                for _, old in list_checkpoints(output_dir)[:-limit]:
                    shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise disk_full_error(error, temporary) from error
    accelerator.wait_for_everyone()
    return final


def save_model(accelerator, model, tokenizer, output_dir: Path, args, metrics: dict) -> None:
    """save_pretrained into a temporary folder, then each file renamed into place: never a half-written file."""
    state_dict = accelerator.get_state_dict(model)  # a collective under FSDP / DeepSpeed: every process calls it
    if not accelerator.is_main_process:
        return
    temporary = output_dir / ".best.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    try:
        accelerator.unwrap_model(model).save_pretrained(temporary, state_dict=state_dict)
        tokenizer.save_pretrained(temporary)
        atomic_write_text(temporary / "training_config.yaml", yaml.safe_dump(_plain(vars(args)), sort_keys=True))
        # which weights these numbers were measured on: publish.py and evaluate.py check it against the folder's
        atomic_write_json(temporary / EVAL_RESULTS, {**metrics, WEIGHTS_KEY: weights_fingerprint(temporary)})
        names = sorted(path.name for path in temporary.iterdir())
        old = [path for path in _model_files_in(output_dir) if path.name not in names]
        write_marker(output_dir, model_files=names)
        move_files_into(temporary, output_dir, last=(EVAL_RESULTS,))
        for path in old:  # files of the previous best model that this one does not have
            path.unlink(missing_ok=True)
        _remove_results(output_dir, "was replaced by a better one")
    except OSError as error:
        raise disk_full_error(error, output_dir) from error


def set_learning_rate(optimizer, lr_scheduler, learning_rate: float) -> None:
    """Apply `learning_rate` to a restored optimizer and scheduler (whose state holds the interrupted run's), keeping
    the schedule's position: a resume with a new --learning_rate uses it."""
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)
    if all(base == learning_rate for base in scheduler.base_lrs):
        return
    logger.info(f"resuming with --learning_rate {learning_rate} (the checkpoint's run used {scheduler.base_lrs[0]})")
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for index, group in enumerate(optimizer.param_groups):
        old = scheduler.base_lrs[index]
        if lambdas is not None:
            group["lr"] = learning_rate * lambdas[index](scheduler.last_epoch)
        else:
            group["lr"] = group["lr"] * learning_rate / old if old else learning_rate
        group["initial_lr"] = learning_rate
    scheduler.base_lrs = [learning_rate] * len(optimizer.param_groups)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _plain(values: dict) -> dict:
    return {key: value for key, value in values.items() if isinstance(value, (str, int, float, bool, dict, type(None)))}


def _log_line(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop what the interrupted run logged after the checkpoint, so no step is logged twice. A torn last
    line (the run was killed while writing it) is dropped; a damaged line elsewhere is an error."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            record_step = int(record["step"])
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines):
                logger.warning(f"{path}: dropping its torn last line ({line[:60]!r})")
                continue
            raise ValueError(
                f"{path}, line {number}, is not a metrics record ({error}): {line[:80]!r}. Remove or repair that line, "
                "then resume again."
            ) from error
        if record_step <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX); without them its LSTM has no bf16 primitive
    at all, and bf16 matrix multiplies are emulated, many times slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def usable_mixed_precision(args) -> str | None:
    on_cpu = args.use_cpu or not torch.cuda.is_available()
    if args.mixed_precision == "bf16" and on_cpu and not cpu_supports_bf16():
        warnings.warn(
            "--mixed_precision bf16 was asked for, but this CPU has no bf16 support (AVX512-BF16 or AMX): oneDNN has "
            "no bf16 LSTM for it and emulated bf16 is slower than fp32. Training in fp32 instead.",
            stacklevel=2,
        )
        return "no"
    if args.mixed_precision == "fp16" and on_cpu:
        warnings.warn(
            "--mixed_precision fp16 was asked for, but accelerate has no fp16 autocast on a CPU (it would train in "
            "fp32 and call it fp16). Training in fp32 instead, and training_config.yaml says so; bf16 is the CPU's "
            "mixed precision.",
            stacklevel=2,
        )
        return "no"
    return args.mixed_precision


def trained_precision(accelerator) -> str:
    """The precision the Accelerator really trains in (what `training_config.yaml` records)."""
    if accelerator.device.type == "cpu" and not accelerator.native_amp:
        return "no"  # accelerate keeps the name of a precision it cannot autocast to on a CPU
    return accelerator.mixed_precision


# Settings a resume may change: they leave the updates of the run as they were (how often it logs, validates and
# checkpoints; where its files are; when it stops), or are the remedies for a run stopped by a non-finite loss
# (--learning_rate, applied at the schedule's position, --max_grad_norm, the precision). Every other setting makes
# another run and is refused on resume. The data and the global batch are compared as what they are (the texts, the
# batch of all processes together), not by the paths and per-device numbers that give them.
RESUMABLE = {
    "config",
    "output_dir",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "learning_rate",
    "max_grad_norm",
    "mixed_precision",
    "use_cpu",
    "max_train_steps",
    "num_train_epochs",
    "eval_steps",
    "early_stopping_patience",
    "checkpointing_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "per_device_eval_batch_size",
    "data_dir",
    "train_file",
    "validation_file",
    "per_device_train_batch_size",
    "word_dropout",
}  # fmt: skip  (word_dropout: compared as the config_overrides field it sets)
RESUMABLE_WORDS = (
    "A resume may change --learning_rate, --max_grad_norm, --mixed_precision, --use_cpu, --max_train_steps or "
    "--num_train_epochs (unless a schedule spreads over them), how often the run logs, validates and checkpoints, "
    "--early_stopping_patience, --save_total_limit, --report_to, --per_device_eval_batch_size, where the data is (not "
    "the texts) and the number of processes (not the total batch)."
)
LENGTH_FREE_SCHEDULERS = ("constant", "constant_with_warmup", "inverse_sqrt")  # do not depend on --max_train_steps


def run_settings(args, processes: int) -> dict:
    settings = json.loads(json.dumps(_plain(vars(args))))
    settings["train_batch_size"] = args.per_device_train_batch_size * processes
    return settings


def _setting_name(name: str) -> str:
    if name == "train_batch_size":
        return "the batch size (--per_device_train_batch_size x processes)"
    return f"--{name}"


def check_resume_settings(state: dict, args, processes: int, checkpoint: Path) -> dict:
    """Refuse a resume whose settings would make another run than the checkpoint's. Returns the settings that
    changed as a resume may change them, {name: [before, now]}."""
    recorded = state.get("settings")
    if recorded is None:
        logger.warning(
            f"{checkpoint} predates recorded settings: the resume cannot check that its settings are the run's"
        )
        return {}
    current = run_settings(args, processes)
    common = sorted(set(recorded) & set(current))
    refused = [name for name in common if name not in RESUMABLE and recorded[name] != current[name]]
    if refused:
        listed = "; ".join(f"{_setting_name(n)} {current[n]!r} (the run: {recorded[n]!r})" for n in refused)
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} continues a run made with other settings, and resuming would "
            f"make another run: {listed}. Resume with the run's settings (its checkpoints' {TRAINER_STATE} and its "
            "training_config.yaml record them), or start a new run in another --output_dir (--model_name_or_path "
            f"DIR trains a saved model further). {RESUMABLE_WORDS}"
        )
    return {name: [recorded[name], current[name]] for name in common if recorded[name] != current[name]}


def data_fingerprint(raw: dict) -> dict:
    """SHA-256 of the training and validation rows, in order: what the run trained and selected its model on."""
    digests = {}
    for split in ("train", "validation"):
        digest = hashlib.sha256()
        for batch in raw[split].iter(batch_size=1000):
            digest.update(json.dumps(batch, sort_keys=True, ensure_ascii=False).encode())
        digests[split] = digest.hexdigest()
    return digests


def check_resume_data(state: dict, data: dict, total_steps: int, args, checkpoint: Path) -> None:
    recorded = state.get("data_sha256")
    if recorded:
        changed = [split for split in ("train", "validation") if recorded.get(split) != data[split]]
        if changed:
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: the {' and '.join(changed)} texts are not those the run was "
                "trained on (--dataset, --train_file, --validation_file or their splits give other texts now). Resume "
                "with the run's data, or train on the new data in a new run: --model_name_or_path DIR (a saved model) "
                "and another --output_dir."
            )
    before = state.get("total_steps")
    if before and before != total_steps:
        depends = [f"--kl_schedule {args.kl_schedule}"] if args.kl_schedule == "cyclical" else []
        if args.lr_scheduler_type not in LENGTH_FREE_SCHEDULERS:
            depends.append(f"--lr_scheduler_type {args.lr_scheduler_type}")
        if depends:
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: the run was set for {before} updates and {' and '.join(depends)} "
                f"spreads over them, so {total_steps} would change the schedule the run has followed. Resume with "
                f"--max_train_steps {before}, or start a new run."
            )
        logger.info(f"the run was set for {before} updates; it now makes {total_steps}")


def checkpoint_is_inside(args) -> bool:
    """Whether --resume_from_checkpoint names a checkpoint of --output_dir itself (a continuation, or a rewind)."""
    value = args.resume_from_checkpoint
    if value == "latest":
        return True
    return Path(value).absolute().parent.resolve() == Path(args.output_dir).resolve()


def read_marker(output_dir: Path) -> dict | None:
    try:
        marker = json.loads((output_dir / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(output_dir: Path, model_files: list[str] | None = None) -> None:
    marker = read_marker(output_dir) or {}
    marker.update(written_by=COMMAND)
    if model_files is not None:
        marker["model_files"] = sorted(model_files)
    marker.setdefault("model_files", [])
    atomic_write_json(output_dir / RUN_MARKER, marker)


class FolderContents:
    """What --output_dir holds, sorted into what train.py writes (`known`) and everything else (`unknown`)."""

    def __init__(self, output_dir: Path):
        entries = []
        if output_dir.is_dir():
            entries = sorted(p for p in output_dir.iterdir() if not _ignored(p.name))
        checkpoints = {path for _, path in list_checkpoints(output_dir)}
        marker = read_marker(output_dir)
        # a marker alone is a run that stopped before it wrote anything (bad data, say): the folder is still empty
        entries = [p for p in entries if not (p.name == RUN_MARKER and len(entries) == 1)]
        self.earlier_run = bool(entries) and (
            marker is not None or (output_dir / LOG_FILE).is_file() or bool(checkpoints)
        )
        recorded = set(marker.get("model_files", [])) if marker else set()
        code = self.earlier_run or (output_dir / "config.json").is_file()
        self.known, self.unknown = [], []
        for path in entries:
            name, is_file = path.name, path.is_file() and not path.is_symlink()
            ours = (
                path in checkpoints
                or (
                    is_file
                    and (name in RUN_FILES or name in recorded or _model_file(name, code) or RESULT_FILE.match(name))
                )
                or (self.earlier_run and name == TRACKER_PROJECT and path.is_dir() and not path.is_symlink())
            )
            (self.known if ours else self.unknown).append(path)
        self.model = [
            p.name for p in entries if p.is_file() and (p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES))
        ]

    @property
    def empty(self) -> bool:
        return not (self.known or self.unknown)


def _ignored(name: str) -> bool:
    """The lock's files, and the leftovers of an interrupted write (removed under the lock)."""
    return name in (LOCK_FILE, LOCK_OWNER_FILE) or (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX))


def _model_file(name: str, code: bool = True) -> bool:
    return name in MODEL_FILES or bool(WEIGHT_SHARD.match(name)) or (code and name in CODE_FILES)


def _names(paths, limit: int = 8) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


OVERWRITE_REMOVES = (
    "--overwrite_output_dir removes only what train.py writes there (its model, checkpoints, metrics.jsonl, plot, "
    "tracker logs and the evaluation results of its model); any other file is kept"
)


def prepare_output_dir(args, output_dir: Path) -> str:
    """On the main process, holding the folder's lock: refuse a folder that holds anything but nothing or this run,
    and clear an earlier run for --overwrite_output_dir. Returns how the run uses the folder: "continue" (a resume
    from one of its own checkpoints), "elsewhere" (another folder's checkpoint, continued here) or "new"."""
    for leftover in remove_temporary_leftovers(output_dir):
        logger.warning(f"removed {leftover}, left by an interrupted write (a crash or a full disk)")
    if args.resume_from_checkpoint and checkpoint_is_inside(args):
        if read_marker(output_dir) is None:
            write_marker(output_dir)
        return "continue"
    contents = FolderContents(output_dir)
    if not contents.empty and not args.overwrite_output_dir:
        raise FileExistsError(_refusal(args, output_dir, contents))
    if not contents.empty:
        for path in contents.known:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        if contents.known:
            logger.warning(
                f"--overwrite_output_dir: removed {output_dir}'s earlier files: {_names(contents.known, 40)}"
            )
        if contents.unknown:
            logger.warning(
                f"--overwrite_output_dir kept {_names(contents.unknown, 40)} in {output_dir}: train.py did not write "
                f"them ({OVERWRITE_REMOVES})"
                + ("; a model card or results among them describe the removed model" if contents.model else "")
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_marker(output_dir, model_files=[])
    if args.resume_from_checkpoint:
        return "elsewhere"
    return "new"


def refuse_a_foreign_folder(args, output_dir: Path) -> None:
    """Before the lock: a folder that holds something but no run of train.py is refused without being touched
    (the lock's hidden files are not even created in it). prepare_output_dir checks again under the lock."""
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output_dir {output_dir} is a file, not a folder: choose a new or empty folder.")
    if args.overwrite_output_dir or (args.resume_from_checkpoint and checkpoint_is_inside(args)):
        return
    contents = FolderContents(output_dir)
    if not contents.empty and not contents.earlier_run:
        raise FileExistsError(_refusal(args, output_dir, contents))


def _refusal(args, output_dir: Path, contents: FolderContents) -> str:
    if args.resume_from_checkpoint and contents.earlier_run:
        return (
            f"--resume_from_checkpoint {args.resume_from_checkpoint} is not in --output_dir {output_dir}, which holds "
            "an earlier run of train.py: continuing another folder's run here would mix two runs in one log and one "
            "set of checkpoints. Use a new or empty --output_dir (the run continues there; the other folder's log and "
            f"checkpoints stay where they are), or --overwrite_output_dir to remove this folder's earlier run first "
            f"({OVERWRITE_REMOVES})."
        )
    if contents.earlier_run:
        return (
            f"{output_dir} holds an earlier run: pass --resume_from_checkpoint latest to continue it, "
            f"--overwrite_output_dir to start afresh ({OVERWRITE_REMOVES}), or another --output_dir."
        )
    if contents.model:
        return (
            f"{output_dir} holds a saved model ({', '.join(contents.model[:4])}) that train.py did not write: training "
            "would replace its weights and leave its other files beside them. Choose a new or empty --output_dir, or "
            f"pass --overwrite_output_dir to replace it ({OVERWRITE_REMOVES})."
        )
    return (
        f"{output_dir} is not empty: it holds files that train.py did not write ({_names(contents.unknown)}). Choose a "
        f"new or empty --output_dir, or pass --overwrite_output_dir to train beside them ({OVERWRITE_REMOVES})."
    )


def _remove_results(output_dir: Path, why: str) -> None:
    """training/evaluate.py's results in the folder measured the model that is being replaced: remove them."""
    stale = [
        p for p in sorted(output_dir.iterdir()) if p.is_file() and RESULT_FILE.match(p.name) and p.name != EVAL_RESULTS
    ]
    for path in stale:
        path.unlink()
    if stale:
        logger.warning(f"removed {_names(stale)}: they are the results of the model that {why}")


def _model_files_in(output_dir: Path) -> list[Path]:
    recorded = set((read_marker(output_dir) or {}).get("model_files", []))
    return [p for p in sorted(output_dir.iterdir()) if p.is_file() and (p.name in recorded or _model_file(p.name))]


def link_or_copy_files(source: Path, target: Path, names) -> None:
    """Put the files `names` of `source` into the new folder `target`: hard links (no space, and the saved files
    are only ever replaced by a rename, never written in place), or copies where the disk has no hard links."""
    target.mkdir(parents=True)
    for name in names:
        try:
            os.link(source / name, target / name)
        except OSError:
            shutil.copy2(source / name, target / name)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def restore_best_model(checkpoint: Path, output_dir: Path, state: dict) -> None:
    """After a resume, make --output_dir's best model (and eval_results.json) the best of the run up to the
    checkpoint's step: a model saved after that step belongs to the continuation that the resume abandons. Each
    checkpoint keeps the best model of its time in `best_model/`."""
    step = state["global_step"]
    saved = _read_json(output_dir / EVAL_RESULTS)
    copy = checkpoint / BEST_MODEL_COPY
    if state.get("best_step") is None or not copy.is_dir():
        if not (isinstance(saved, dict) and isinstance(saved.get("step"), int) and saved["step"] > step):
            return
        for path in _model_files_in(output_dir):
            path.unlink()
        write_marker(output_dir, model_files=[])
        _remove_results(output_dir, "was removed")
        if state.get("best_step") is None:
            logger.warning(
                f"removed the best model of step {saved['step']} from {output_dir}: it was saved after step {step}, "
                "which this resume continues from; the next validation saves the best model again"
            )
        else:  # a checkpoint of an earlier version of train.py: it has no copy of the best model of its time
            logger.warning(
                f"removed the best model of step {saved['step']} from {output_dir}: it was saved after step {step}, "
                f"and {checkpoint} (an older checkpoint) has no copy of the best model of step {state['best_step']}; "
                f"a model is saved again when a validation beats -ELBO {state['best_metric']:.3f}"
            )
        return
    wanted = _read_json(copy / EVAL_RESULTS)
    if saved == wanted and isinstance(saved, dict) and saved.get(WEIGHTS_KEY) == weights_fingerprint(output_dir):
        return
    temporary = output_dir / ".best.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    names = sorted(p.name for p in copy.iterdir() if p.is_file())
    link_or_copy_files(copy, temporary, names)
    old = [p for p in _model_files_in(output_dir) if p.name not in names]
    write_marker(output_dir, model_files=names)
    move_files_into(temporary, output_dir, last=(EVAL_RESULTS,))
    for path in old:
        path.unlink(missing_ok=True)
    _remove_results(output_dir, "was replaced")
    logger.info(
        f"restored the best model of step {state['best_step']} from {copy} into {output_dir}"
        + (
            f" (the one there was saved at step {saved.get('step')}, after the checkpoint)"
            if isinstance(saved, dict)
            else ""
        )
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    check_model_size(args)
    args.mixed_precision = usable_mixed_precision(args)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
        # The batch sampler makes global batches; each process takes its slice, so N processes with batch B/N
        # compute the update one process makes with batch B.
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        # On a machine without an accelerator, say so: accelerate then runs torchrun's processes as multi-CPU (gloo).
        cpu=args.use_cpu or not torch.accelerator.is_available(),
    )
    trained = trained_precision(accelerator)
    if args.mixed_precision not in (None, trained):
        warnings.warn(
            f"--mixed_precision {args.mixed_precision} is not available here: training in {trained}.", stacklevel=2
        )
    args.mixed_precision = trained  # what training_config.yaml records: what ran
    accelerator.register_save_state_pre_hook(unshare_flattened_weights)
    if accelerator.device.type == "cpu":
        reuse_freed_memory()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("accelerate", "matplotlib", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not accelerator.is_main_process:
        logging.getLogger().setLevel(logging.ERROR)
        datasets.disable_progress_bars()
    with contextlib.ExitStack() as stack:
        use = None
        if accelerator.is_main_process:
            refuse_a_foreign_folder(args, output_dir)
            # Held for the whole run, and taken before anything in the folder is touched: a second run on the folder
            # fails at once, naming this one, and removes nothing.
            stack.enter_context(locked_folder(output_dir, COMMAND))
            use = prepare_output_dir(args, output_dir)
        accelerator.wait_for_everyone()
        return train_in_folder(args, accelerator, output_dir, use)


def train_in_folder(args, accelerator, output_dir: Path, use: str | None) -> dict:
    set_seed(args.seed)
    processes = accelerator.num_processes
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir) if args.resume_from_checkpoint else None
    resumed_state = read_checkpoint(checkpoint, output_dir, processes) if checkpoint else None
    changed = check_resume_settings(resumed_state, args, processes, checkpoint) if checkpoint else {}
    # The task (language model, or dialogue: training/dialogue_task.py) decides the data, batches and model class.
    dialogue = dialogue_task.is_dialogue(args)
    raw = dialogue_task.load_splits(args) if dialogue else load_splits(args)
    data = data_fingerprint(raw)
    train_texts = dialogue_task.tokenizer_texts(raw["train"]) if dialogue else raw["train"]["text"]
    tokenizer = get_tokenizer(args, train_texts, checkpoint)
    task_tokenize = dialogue_task.tokenize if dialogue else tokenize
    train_data, truncated = task_tokenize(raw["train"], tokenizer, args.max_length, "training")
    eval_data, _ = task_tokenize(raw["validation"], tokenizer, args.max_length, "validation")

    if dialogue:
        model = dialogue_task.build_model(args, tokenizer)
    elif args.model_name_or_path:
        model = TWRVAEModel.from_pretrained(args.model_name_or_path, **args.config_overrides)
    else:
        config = TWRVAEConfig.from_preset(args.preset, vocab_size=len(tokenizer), **args.config_overrides)
        model = TWRVAEModel(config)
    check_tokenizer(tokenizer, model.config)
    # saved with the model, so that loading refuses a tokenizer of the same size with other word ids
    setattr(model.config, FINGERPRINT_KEY, vocabulary_fingerprint(tokenizer.get_vocab()))

    collator = (
        dialogue_task.DialogueCollator(tokenizer) if dialogue else DataCollatorWithPadding(tokenizer, padding="longest")
    )
    train_loader, train_sampler = make_loader(
        train_data, args.per_device_train_batch_size * processes, True, args.seed, collator
    )
    eval_loader, _ = make_loader(eval_data, args.per_device_eval_batch_size * processes, False, args.seed, collator)

    optimizer = build_optimizer(model, args, accelerator.device)
    updates_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    num_epochs = math.ceil(max_train_steps / updates_per_epoch)
    if checkpoint is not None:
        check_resume_data(resumed_state, data, max_train_steps, args, checkpoint)
    lr_scheduler = get_scheduler(
        args.lr_scheduler_type, optimizer, num_warmup_steps=args.num_warmup_steps, num_training_steps=max_train_steps
    )
    kl_schedule = KLSchedule(
        args.kl_schedule,
        args.kl_weight,
        args.kl_anneal_steps,
        max_train_steps,
        args.kl_cycles,
        args.kl_cycle_ratio,
        args.kl_start_weight,
    )
    model, optimizer, train_loader, eval_loader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, lr_scheduler
    )
    if accelerator.is_main_process and args.report_to != "none":
        # trackers take flat scalars: nested settings become "config_overrides.hidden_size" and the like
        flat = {}
        for key, value in _plain(vars(args)).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            flat.update({f"{key}.{inner}" if inner else key: v for inner, v in items if v is not None})
        accelerator.init_trackers(TRACKER_PROJECT, config=flat)

    state = {"global_step": 0, "best_metric": None, "best_step": None, "evaluations_without_improvement": 0}
    last_checkpoint = None
    metrics_file = output_dir / LOG_FILE
    running = torch.zeros(4, dtype=torch.float64)  # the sums of the losses since the last logged step, and their count
    running_count = 0
    if checkpoint is not None:
        load_checkpoint(accelerator, checkpoint, output_dir)
        state, last_checkpoint = resumed_state, checkpoint
        if "running_sums" in state:
            running = torch.tensor(state["running_sums"], dtype=torch.float64)
            running_count = int(state["running_count"])
        if accelerator.is_main_process:
            if use == "continue":
                remove_later_checkpoints(output_dir, state["global_step"])
                _truncate_log(metrics_file, state["global_step"])
            else:
                logger.warning(
                    f"continuing the run of {checkpoint} (step {state['global_step']}) in the new folder {output_dir}: "
                    f"its metrics.jsonl starts at step {state['global_step'] + 1}; {checkpoint.parent}'s log and "
                    "checkpoints stay there and are not copied"
                )
            restore_best_model(checkpoint, output_dir, state)
        accelerator.wait_for_everyone()
        set_learning_rate(optimizer, lr_scheduler, args.learning_rate)
        logger.info(f"resumed from {last_checkpoint} at step {state['global_step']}")
        if changed:
            logger.info(f"settings changed on resume: {changed}")
            state.setdefault("resumes", []).append(
                {"step": state["global_step"], "checkpoint": str(checkpoint), "changed": changed}
            )
    # what the run is: a resume is checked against it (check_resume_settings, check_resume_data)
    state.update(settings=run_settings(args, processes), data_sha256=data, total_steps=max_train_steps)

    logger.info(
        f"{len(train_data)} training / {len(eval_data)} validation texts, vocabulary {len(tokenizer)}, "
        f"{accelerator.unwrap_model(model).num_parameters():,} parameters, {processes} process(es), "
        f"{max_train_steps} updates ({num_epochs} epochs of {updates_per_epoch})"
    )
    progress = tqdm(
        total=max_train_steps,
        initial=state["global_step"],
        disable=not accelerator.is_local_main_process,
        desc="training",
    )
    try:
        state = train_loop(
            args, accelerator, model, optimizer, lr_scheduler, kl_schedule, train_loader, train_sampler, eval_loader,
            tokenizer, output_dir, state, last_checkpoint, running, running_count, progress,
            max_train_steps=max_train_steps, updates_per_epoch=updates_per_epoch, num_epochs=num_epochs,
        )  # fmt: skip
    finally:
        progress.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        plot_training_curves(metrics_file, output_dir / CURVES_FILE)
    accelerator.end_training()
    summary = {
        "global_step": state["global_step"],
        "best_step": state["best_step"],
        "best_metric": state["best_metric"],
    }
    summary["truncated_training_texts"] = truncated
    return summary


def train_loop(
    args, accelerator, model, optimizer, lr_scheduler, kl_schedule, train_loader, train_sampler, eval_loader,
    tokenizer, output_dir, state, last_checkpoint, running, running_count, progress, *, max_train_steps,
    updates_per_epoch, num_epochs,
) -> dict:  # fmt: skip
    metrics_file = output_dir / LOG_FILE
    stop = state["global_step"] >= max_train_steps
    start_epoch = state["global_step"] // updates_per_epoch
    skip_batches = (state["global_step"] % updates_per_epoch) * args.gradient_accumulation_steps
    model.train()
    for epoch in range(start_epoch, num_epochs):
        if stop:
            break
        # accelerate's loaders call set_epoch(their own iteration count) when iterated: set that count too, or a
        # resumed run would replay epoch 0's order.
        train_loader.set_epoch(epoch)
        train_sampler.set_epoch(epoch)
        loader = train_loader
        if epoch == start_epoch and skip_batches:
            loader = accelerator.skip_first_batches(train_loader, skip_batches)
        for batch in loader:
            kl_weight = kl_schedule(state["global_step"])
            with accelerator.accumulate(model):
                output = model(
                    **batch,
                    kl_weight=kl_weight,
                    sample_posterior=args.sample_posterior,
                    free_bits=args.free_bits,
                    return_logits=False,
                )
                accelerator.backward(output.loss * loss_scale(args, accelerator, batch["input_ids"].shape[0]))
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            values = torch.stack(
                [output.loss, output.reconstruction_loss, output.kl_regularizer, output.kl_decoded]
            ).detach()
            values = accelerator.gather(values[None]).double().mean(0).cpu()
            if not torch.isfinite(values).all():
                raise NonFiniteLossError(
                    f"The loss became {values[0].item()} at update {state['global_step'] + 1}. Last good checkpoint: "
                    f"{last_checkpoint or 'none yet'}. Resume from it with a lower --learning_rate, with "
                    "--max_grad_norm, or without fp16."
                )
            running += values
            running_count += 1
            if not accelerator.sync_gradients:
                continue
            state["global_step"] += 1
            step = state["global_step"]
            progress.update(1)
            if step % args.logging_steps == 0 or step == max_train_steps:
                averages = (running / running_count).tolist()
                record = {
                    "step": step,
                    "epoch": round(step / updates_per_epoch, 4),
                    "loss": averages[0],
                    "reconstruction_loss": averages[1],
                    "kl_regularizer": averages[2],
                    "kl_decoded": averages[3],
                    "kl_weight": kl_weight,
                    "learning_rate": lr_scheduler.get_last_lr()[0],
                }
                running.zero_()
                running_count = 0
                progress.set_postfix(rec=f"{averages[1]:.2f}", kl=f"{averages[3]:.2f}", refresh=False)
                if accelerator.is_main_process:
                    _log_line(metrics_file, record)
                accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=step)
            end_of_epoch = step % updates_per_epoch == 0
            if (
                (args.eval_steps and step % args.eval_steps == 0)
                or (not args.eval_steps and end_of_epoch)
                or (step == max_train_steps)
            ):
                metrics = evaluate(model, eval_loader, accelerator, args.seed)
                improved = state["best_metric"] is None or metrics["elbo_nll"] < state["best_metric"]
                if improved:
                    state.update(best_metric=metrics["elbo_nll"], best_step=step, evaluations_without_improvement=0)
                    save_model(accelerator, model, tokenizer, output_dir, args, {"step": step, **metrics})
                else:
                    state["evaluations_without_improvement"] += 1
                record = {"step": step, **{f"eval_{k}": v for k, v in metrics.items()}}
                logger.info(
                    f"step {step}: validation -ELBO {metrics['elbo_nll']:.3f} (reconstruction "
                    f"{metrics['reconstruction_loss']:.3f} + KL {metrics['kl_decoded']:.3f})"
                    + (" - best so far, saved" if improved else "")
                )
                if accelerator.is_main_process:
                    _log_line(metrics_file, record)
                accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
                patience = args.early_stopping_patience
                if patience and state["evaluations_without_improvement"] >= patience:
                    logger.info(f"early stopping: {patience} validations without improvement")
                    stop = True
            if args.checkpointing_steps and (step % args.checkpointing_steps == 0 or stop or step == max_train_steps):
                # the sums of the next logged average: a resume continues them, as if the run had never stopped
                state.update(running_sums=running.tolist(), running_count=running_count)
                last_checkpoint = save_checkpoint(
                    accelerator, output_dir, step, state, args.save_total_limit, tokenizer
                )
            if stop or step >= max_train_steps:
                stop = True
                break
    return state


def cli(argv=None) -> None:
    """`training/train.py` and `twrvae train`: `main` with the commands' way of failing (one `error:` line)."""
    run_main(lambda: main(argv), also=(NonFiniteLossError, CheckpointError), interrupted=INTERRUPTED)


if __name__ == "__main__":
    cli()
