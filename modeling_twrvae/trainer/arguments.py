"""train.py's arguments: the parser (the names and defaults of transformers' example scripts), a YAML `--config`
(a file, or the name of a shipped one) read as defaults that the command line overrides, and the checks that refuse,
before any data is read, settings that are wrong in themselves (a usage error: argparse's usage line, exit status 2).

`--config_overrides` (fields of the model's configuration over its preset) is made in one place, `config_overrides`:
the YAML's mapping, the command line's fields over it, `--word_dropout`, checked against the fields of the task's
configuration class (`tasks.choose_task`) and typed as they are. The task applies it (`Task.fresh_config`,
`Task.build_model`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import warnings

import torch
import yaml

from modeling_twrvae import DialogWAEConfig, IVAEConfig, SeqGANConfig, TWRCVAEConfig, TWRVAEConfig
from modeling_twrvae.data.corpora import CORPORA, DATA_DIR_ENV
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA
from modeling_twrvae.tokenization_twrvae import PRE_TOKENIZATIONS, SPECIAL_TOKENS
from modeling_twrvae.trainer.errors import brief
from modeling_twrvae.trainer.kl_schedules import SCHEDULES
from modeling_twrvae.trainer.output_folder import checkpoint_is_inside
from modeling_twrvae.trainer.shipped_configs import resolve_config
from modeling_twrvae.trainer.tasks import Task, choose_task


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """train.py's parser; `description` is its --help text (train.py's docstring)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    data.add_argument(
        "--pad_to_multiple_of",
        type=int,
        help="Pad each batch to a multiple of N tokens (transformers' DataCollatorWithPadding option): a few fixed "
        "lengths instead of one per batch, the static shapes a captured graph or a compiled step needs. The loss, "
        "gradients and updates are those of padding to the longest sentence. Language models only.",
    )
    data.add_argument(
        "--dataloader_drop_last",
        action="store_true",
        help="Drop each epoch's last, smaller training batch (transformers' TrainingArguments option), so that every "
        "batch has the same size.",
    )
    data.add_argument("--validation_split", default="validation", help="Split of --dataset to validate on.")
    data.add_argument("--dataset_name", help="A Hub dataset, for text not known by name.")
    data.add_argument("--dataset_config_name", help="The configuration of --dataset_name.")
    data.add_argument("--train_file", help="Local training text: .txt (a text a line), .csv/.tsv or .json/.jsonl.")
    data.add_argument("--validation_file", help="Local validation text, as --train_file.")
    data.add_argument("--text_column", help="Column holding the text in CSV, JSON or Hub data.")
    data.add_argument(
        "--delexicalize",
        type=_bool,
        default=False,
        help="E2E only: replace each text's restaurant name and landmark (its MR's name[...] and near[...]) with "
        "the words xname and xnear, as E2E systems commonly do (modeling_twrvae/data/e2e.py). The model's inputs "
        "must then be delexicalised too, and its outputs hold the placeholders.",
    )
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
        choices=TWRVAEConfig.presets()
        + TWRCVAEConfig.presets()
        + DialogWAEConfig.presets()
        + IVAEConfig.presets()
        + SeqGANConfig.presets(),
        help="Model of the papers (twr-cvae, cvae, dialogwae, dialogwae-gmp, ivae, seqgan: dialogue response "
        "generation).",
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
    optim.add_argument(
        "--lr_scheduler_cycles",
        type=int,
        help="Cycles of --lr_scheduler_type cosine_with_restarts (transformers' `num_cycles`; default its 1): Fu et "
        "al.'s PTB code restarts a cosine learning rate with each KL cycle (CYC:language_model/train_text_cyc_ptb.py:"
        "167-172).",
    )
    optim.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], help="Default: `accelerate config`'s.")
    optim.add_argument("--seed", type=int, default=42)
    optim.add_argument("--use_cpu", action="store_true", help="Train on the CPU even where a GPU is available.")
    optim.add_argument(
        "--torch_compile",
        action="store_true",
        help="Compile the model with torch.compile (transformers' TrainingArguments name), with dynamic shapes so "
        "that the length-grouped batches compile once, not once a length. The first steps are slow while it compiles.",
    )

    kl = parser.add_argument_group("KL term")
    kl.add_argument("--kl_schedule", choices=SCHEDULES, default="constant")
    kl.add_argument("--kl_weight", type=float, default=1.0, help="The KL weight (its maximum when annealed).")
    kl.add_argument("--kl_anneal_steps", type=int, default=10000, help="Steps of linear/sigmoid annealing.")
    kl.add_argument(
        "--kl_start_weight",
        type=float,
        default=0.0,
        help="Where linear annealing starts (0.1 in TWR-VAE's dialogue code), or each cycle of cyclical annealing "
        "(0.1 in Fu et al.'s language-model code, CYC:language_model/train_text_cyc_ptb.py:167-178).",
    )
    kl.add_argument("--kl_cycles", type=int, default=4, help="Cycles of cyclical annealing.")
    kl.add_argument(
        "--kl_cycle_ratio",
        type=float,
        default=0.5,
        help="Share of a cycle spent increasing (0.5 in Fu et al.'s paper and README; their PTB code ramps over 4.5 "
        "of each 10 epochs, 0.45).",
    )
    kl.add_argument("--free_bits", type=float, default=0.0, help="Free bits per latent dimension (nats).")
    kl.add_argument(
        "--sample_posterior",
        type=_bool,
        default=True,
        help="Decode from a posterior sample while training (false: from its mean, a plain autoencoder).",
    )

    lag = parser.add_argument_group(
        "aggressive training of the inference network (He et al., 2019; jxhe/vae-lagging-encoder, LAG:text.py)"
    )
    lag.add_argument(
        "--aggressive",
        type=_bool,
        default=False,
        help="Before each decoder update, update the encoder alone on fresh random training batches until its loss "
        "stops improving; end this phase at the first end of an epoch where the validation mutual information falls "
        "(LAG:text.py:351-424,455-464; the authors' `--aggressive 1`).",
    )
    lag.add_argument(
        "--aggressive_max_sub_iter",
        type=int,
        default=100,
        help="The inner loop runs while its counter `sub_iter` (from 1) is below this: at most 99 encoder updates, "
        "as LAG:text.py:371 (`while aggressive_flag and sub_iter < 100`).",
    )
    lag.add_argument(
        "--aggressive_burn_interval",
        type=int,
        default=15,
        help="Compare the mean per-token loss of each window of this many encoder updates with the previous "
        "window's, and stop when it is higher (LAG:text.py:393-402, `sub_iter %% 15 == 0`).",
    )

    wae = parser.add_argument_group(
        "DialogWAE's, iVAE's and SeqGAN's adversarial training (guxd/DialogWAE, fangleai/Implicit-LVM, "
        "jiweil/Neural-Dialogue-Generation)"
    )
    wae.add_argument(
        "--critic_updates",
        type=int,
        default=5,
        help="Critic updates per round (`n_iters_d` of DialogWAE's and iVAE's code, `dSteps` of SeqGAN's), "
        "DialogWAE's and SeqGAN's each on the next batch, iVAE's all on the round's batch; DialogWAE's first batch "
        "also trains the autoencoder (at --learning_rate, SGD) and the generators, SeqGAN's last batch the response "
        "generator. An update is a round.",
    )
    wae.add_argument(
        "--generator_learning_rate",
        type=float,
        help="DialogWAE's and iVAE's noise networks and generators: RMSprop, default 5e-5 (WAE:configs.py:24).",
    )
    wae.add_argument(
        "--critic_learning_rate",
        type=float,
        help="The critic: RMSprop, default 1e-5 (DialogWAE, iVAE; WAE:configs.py:25); SeqGAN's discriminator: SGD, "
        "default 0.01 (ADV:Adversarial/discriminative/dis_parse.lua:14).",
    )
    wae.add_argument(
        "--baseline_learning_rate",
        type=float,
        help="SeqGAN's reward baseline: SGD, default 0.0005 (ADV:Adversarial/Reinforce/parse.lua:20).",
    )
    wae.add_argument(
        "--generator_pretrain_steps",
        type=int,
        default=0,
        help="SeqGAN: the first N rounds train the response generator by likelihood, on each of a round's batches.",
    )
    wae.add_argument(
        "--discriminator_pretrain_steps",
        type=int,
        default=0,
        help="SeqGAN: the next N rounds train the discriminator alone, on each of a round's batches; the adversarial "
        "rounds follow.",
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
    run.add_argument(
        "--metric_for_best_model",
        choices=BEST_MODEL_METRICS,
        default="elbo_nll",
        help="The validation number (lower is better) that picks the model saved in --output_dir: `elbo_nll` "
        "(default: -ELBO with the KL of the decoded latent, for likelihood) or `reconstruction_loss` (-log p(x|z) "
        "for a posterior sample, for a model used to reconstruct, interpolate and edit: it keeps improving while "
        "z takes more information and -ELBO worsens).",
    )
    run.add_argument("--early_stopping_patience", type=int, help="Stop after N validations without improvement.")
    run.add_argument("--checkpointing_steps", type=int, help="Save the training state every N updates.")
    run.add_argument("--save_total_limit", type=int, default=2, help="Keep this many newest checkpoints.")
    run.add_argument(
        "--resume_from_checkpoint",
        help="A checkpoint folder, or `latest` in --output_dir; the run's settings, but for those a resume may change.",
    )
    run.add_argument(
        "--aggregate_posterior_components",
        type=int,
        default=0,
        help="Fit the aggregate-posterior sampler with this many Gaussian components (e.g. 16) before the run ends: "
        "EM on the training texts' posterior means under the saved (best) model, seeded by --seed, saved beside the "
        "weights as aggregate_posterior.safetensors; `model.sample(sampler='aggregate')` and `twrvae sample "
        "--sampler aggregate` draw from it. 0 (default): none. Text VAEs only, not the dialogue models.",
    )
    run.add_argument("--logging_steps", type=int, default=10)
    run.add_argument("--report_to", default="none", help="Trackers: `tensorboard`, `wandb`, ..., `all` or `none`.")
    return parser


BEST_MODEL_METRICS = ["elbo_nll", "reconstruction_loss"]


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


def parse_args(argv=None, description: str | None = None) -> argparse.Namespace:
    """The arguments of `argv` (default: sys.argv), over the settings of `--config`, checked."""
    return parse_args_and_task(argv, description)[0]


def parse_args_and_task(argv=None, description: str | None = None) -> tuple[argparse.Namespace, Task]:
    """`parse_args`, and the task the arguments choose (`choose_task`), which their checks need: the run's."""
    parser = build_parser(description)
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--config")
    known, _ = config_parser.parse_known_args(argv)
    from_yaml = {}
    if known.config:
        values = _read_config_file(known.config, parser)
        from_yaml = values.get("config_overrides") or {}
        parser.set_defaults(**values)
    args = parser.parse_args(argv)
    if not args.output_dir:
        parser.error("--output_dir is required (on the command line or in --config).")
    task = choose_task(args)
    args.config_overrides = config_overrides(args, from_yaml, parser, task.config_class)
    check_ranges(args, parser)
    check_model_config(args, parser, task)
    if args.aggregate_posterior_components and task.config_class is not TWRVAEConfig:
        parser.error(
            "--aggregate_posterior_components fits a mixture to a text VAE's latents; the dialogue models have no "
            "aggregate-posterior sampler: leave it at 0."
        )
    if task.adversarial:
        check_adversarial(args, parser, task)
    if args.free_bits and "free_bits" not in task.forward_kwargs():
        parser.error("--free_bits applies to the text VAEs; the dialogue models take KL annealing (--kl_schedule).")
    if args.overwrite_output_dir and args.resume_from_checkpoint and checkpoint_is_inside(args):
        parser.error(
            f"--overwrite_output_dir would remove the earlier run in {args.output_dir} whose checkpoint "
            f"--resume_from_checkpoint {args.resume_from_checkpoint} continues: pass one or the other."
        )
    return args, task


def config_overrides(args, from_yaml, parser: argparse.ArgumentParser, config_class) -> dict:
    """The run's `--config_overrides`: the YAML's fields, the command line's over them field by field, and
    `--word_dropout`; each a field of `config_class`, of its type."""
    overrides = {**_overrides(from_yaml), **_overrides(args.config_overrides)}
    if args.word_dropout is not None:
        overrides["word_dropout"] = args.word_dropout
    check_config_fields(overrides, parser, config_class)
    return typed_overrides(overrides, parser, config_class)


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
    """Up to three names like `name`, only those about as close as the closest (a typo of `learning_rate` names it,
    not every option that ends in `learning_rate`)."""
    ratios = {other: difflib.SequenceMatcher(None, name, other).ratio() for other in known}
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return [other for other in close if ratios[other] >= ratios[close[0]] - 0.1]


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


def check_model_config(args, parser: argparse.ArgumentParser, task: Task) -> None:
    """Refuse, before any data is read, a configuration that the run could not build."""
    if "vocab_size" in args.config_overrides:
        parser.error(
            "--config_overrides vocab_size: the model's vocabulary size is its tokenizer's (config.vocab_size = "
            "len(tokenizer)); ask for a vocabulary of that size with --vocab_size N instead."
        )
    try:
        task.planned_config()
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


def check_model_size(task: Task) -> None:
    """Refuse sizes the machine cannot train (e.g. hidden_size=10**12) before any data is read: the parameters are
    counted on the `meta` device, which allocates nothing."""
    config = task.planned_config()
    if config is None:
        return
    sizes = f"--config_overrides {_describe(task.args.config_overrides)} (vocabulary {config.vocab_size})"
    try:
        with torch.device("meta"):
            parameters = task.model_class(config).num_parameters()
    except RuntimeError as error:  # a weight of more entries than a tensor can index
        raise ValueError(f"{sizes}: the model's weights would not fit in a tensor ({brief(error)}).") from None
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
    "aggressive_max_sub_iter", "aggressive_burn_interval", "lr_scheduler_cycles", "pad_to_multiple_of",
    "critic_updates",
)  # fmt: skip
NON_NEGATIVE = ("learning_rate", "weight_decay", "adam_epsilon", "num_warmup_steps", "save_total_limit", "kl_weight",
                "free_bits", "max_grad_norm", "aggregate_posterior_components", "generator_learning_rate",
                "critic_learning_rate", "baseline_learning_rate", "generator_pretrain_steps",
                "discriminator_pretrain_steps")  # fmt: skip


def check_adversarial(args, parser: argparse.ArgumentParser, task) -> None:
    """What DialogWAE's, iVAE's and SeqGAN's rounds of updates cannot take."""
    for name, value, ok in (
        ("gradient_accumulation_steps", args.gradient_accumulation_steps, 1),
        ("aggressive", args.aggressive, False),
        ("torch_compile", args.torch_compile, False),
        ("free_bits", args.free_bits, 0.0),
    ):  # fmt: skip
        if value != ok:
            parser.error(
                f"--{name} does not apply to DialogWAE, iVAE or SeqGAN, which train in rounds of updates: leave it out."
            )
    if args.mixed_precision not in (None, "no"):
        parser.error(
            "DialogWAE, iVAE and SeqGAN train in fp32 (their critics' exponentials, gradient penalty and sampled "
            "rewards): leave out --mixed_precision."
        )
    if args.metric_for_best_model != "reconstruction_loss":
        parser.error("DialogWAE, iVAE and SeqGAN have no ELBO: pass --metric_for_best_model reconstruction_loss.")
    seqgan = task.config_class is SeqGANConfig
    for name in ("generator_pretrain_steps", "discriminator_pretrain_steps", "baseline_learning_rate"):
        if not seqgan and getattr(args, name):
            parser.error(f"--{name} applies to SeqGAN only: leave it out.")
    if seqgan and args.generator_learning_rate is not None:
        parser.error("--generator_learning_rate is DialogWAE's and iVAE's; SeqGAN's generator takes --learning_rate.")


def check_ranges(args, parser: argparse.ArgumentParser) -> None:
    for name in POSITIVE:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}.")
    for name in NON_NEGATIVE:
        value = getattr(args, name)
        if value is not None and (value < 0 or not math.isfinite(value)):
            parser.error(f"--{name} must be a finite number >= 0, got {value}.")
    if args.delexicalize and (args.dataset != "e2e" or args.train_file or args.validation_file):
        parser.error(
            "--delexicalize reads E2E's meaning representations: use it with --dataset e2e and no --train_file or "
            "--validation_file."
        )
    if args.validation_split_percentage is not None and not 0 < args.validation_split_percentage < 100:
        parser.error(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}.")
    if args.max_length < 3:
        parser.error(f"--max_length must be >= 3 (<bos>, a word, <eos>), got {args.max_length}.")
    if args.vocab_size is not None and args.vocab_size <= len(SPECIAL_TOKENS):
        parser.error(
            f"--vocab_size {args.vocab_size} leaves no room for words: the vocabulary holds the {len(SPECIAL_TOKENS)} "
            f"special tokens ({', '.join(SPECIAL_TOKENS)}) first; ask for more than {len(SPECIAL_TOKENS)}."
        )
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32 - 1] (numpy's and torch's seeds), got {args.seed}.")
    if args.word_dropout is not None and not 0 <= args.word_dropout <= 1:
        parser.error(f"--word_dropout must be in [0, 1], got {args.word_dropout}.")
    if not 0 <= args.kl_start_weight <= args.kl_weight:
        parser.error(f"--kl_start_weight must be in [0, --kl_weight={args.kl_weight}], got {args.kl_start_weight}.")
    if args.kl_start_weight and args.kl_schedule not in ("linear", "cyclical"):
        parser.error(f"--kl_start_weight applies to --kl_schedule linear or cyclical only, not {args.kl_schedule}.")
    if args.aggressive and args.gradient_accumulation_steps != 1:
        parser.error(
            "--aggressive makes one update per batch: it cannot be combined with --gradient_accumulation_steps."
        )
    if not 0 < args.kl_cycle_ratio <= 1:
        parser.error(f"--kl_cycle_ratio must be in (0, 1], got {args.kl_cycle_ratio}.")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            parser.error(f"--{name} must be in [0, 1), got {getattr(args, name)}.")
    if args.learning_rate == 0:
        warnings.warn("--learning_rate is 0: the weights will not change.", stacklevel=2)
