"""The tasks of training/train.py, one a model family: the language model (`LanguageTask`: TWRVAEModel, a text a row)
and the dialogue model (`DialogueTask`: TWRCVAEModel, (context, response) pairs).

Each task has one interface: its splits (`load_splits`), the texts its tokenizer learns from (`tokenizer_texts`),
their tokenisation and batches (`tokenize`, `collator`), its configuration class and the model it builds
(`config_class`, `planned_config`, `build_model`), and what validation measures (`evaluate`). `choose_task` picks
one by one rule, for the argument checks and for the run alike; everything else in train.py (the loop, KL schedules,
checkpoints, saving) is shared by both.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate.logging import get_logger
from transformers import AutoConfig, AutoTokenizer, DataCollatorWithPadding

from modeling_twrvae import (
    CVAE_PRESETS,
    DIALOGWAE_PRESETS,
    IVAE_PRESETS,
    SEQGAN_PRESETS,
    DialogWAEConfig,
    DialogWAEModel,
    IVAEConfig,
    IVAEModel,
    SeqGANConfig,
    SeqGANModel,
    TWRCVAEConfig,
    TWRCVAEModel,
    TWRVAEConfig,
    TWRVAEModel,
    train_tokenizer,
)
from modeling_twrvae.data.corpora import CORPORA, check_local_path, load_corpus
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA, dialogue_pairs, load_dialogues
from modeling_twrvae.data.e2e import load_e2e
from modeling_twrvae.metrics.likelihood import elbo_summary
from modeling_twrvae.modeling_twrcvae import pad_contexts
from modeling_twrvae.modeling_twrvae import check_batch
from modeling_twrvae.trainer.checkpointing import CHECKPOINT_TOKENIZER

logger = get_logger(__name__)
DEFAULT_DIALOGUE_PRESET = "twr-cvae"
DEFAULT_VOCAB_SIZE = 20000
ADVERSARIAL_MODELS = (DialogWAEConfig.model_type, IVAEConfig.model_type)
SEQGAN_PHASES = ("generator_pretraining", "discriminator_pretraining", "adversarial")


def choose_task(args) -> Task:
    """The one rule that picks the task: the dialogue task for a dialogue preset (`twr-cvae`, `cvae`), a dialogue
    corpus (`dailydialog`, `switchboard`) or a saved dialogue model as `--model_name_or_path`; else the language
    task. Argument checking needs it too (the configuration class its `--config_overrides` are checked against): it
    reads no data, only a saved model's configuration."""
    saved = saved_model_type(args.model_name_or_path) if args.model_name_or_path else None
    if args.preset in SEQGAN_PRESETS or saved == SeqGANConfig.model_type:
        return SeqGANTask(args)
    if args.preset in {**DIALOGWAE_PRESETS, **IVAE_PRESETS} or saved in ADVERSARIAL_MODELS:
        return DialogWAETask(args, ivae=args.preset in IVAE_PRESETS or saved == IVAEConfig.model_type)
    dialogue = args.preset in CVAE_PRESETS or args.dataset in DIALOGUE_CORPORA or saved == TWRCVAEConfig.model_type
    return DialogueTask(args) if dialogue else LanguageTask(args)


def saved_model_type(model_name_or_path: str) -> str | None:
    config_file = Path(model_name_or_path) / "config.json"
    if config_file.is_file():
        return json.loads(config_file.read_text()).get("model_type")
    return AutoConfig.from_pretrained(model_name_or_path).model_type


class Task:
    """What a model family trains on and how; train.py calls these and nothing of one family alone.

    Args:
        args: train.py's parsed arguments.
    """

    config_class: type[TWRVAEConfig | TWRCVAEConfig | DialogWAEConfig]
    model_class: type[TWRVAEModel | TWRCVAEModel | DialogWAEModel]
    # trained in rounds of three updates with optimisers of its own (`model.adversarial_update`), not by `train_step`
    adversarial = False

    def __init__(self, args):
        self.args = args

    def preset(self) -> str:
        """The preset the model is built from (when it is not `--model_name_or_path`)."""
        return self.args.preset

    def load_splits(self) -> dict:
        """The `train` and `validation` datasets of the run's data."""
        raise NotImplementedError

    def forward_kwargs(self) -> dict:
        """The training options of the run that the model's `forward` takes, besides the batch and the KL weight."""
        return {"sample_posterior": self.args.sample_posterior}

    def tokenizer_texts(self, train_split):
        """The texts a new tokenizer learns its vocabulary from."""
        raise NotImplementedError

    @staticmethod
    def tokenize(dataset, tokenizer, max_length: int, name: str):
        """Token ids (and a `length` column that groups similar rows into batches), and how many rows were cut."""
        raise NotImplementedError

    def collator(self, tokenizer):
        """What pads a list of tokenised rows into a batch of tensors."""
        raise NotImplementedError

    def fresh_config(self, vocab_size: int):
        """The preset's configuration with `--config_overrides` over it: the model a run without
        `--model_name_or_path` builds."""
        return self.config_class.from_preset(self.preset(), vocab_size=vocab_size, **self.args.config_overrides)

    def planned_config(self):
        """The configuration the run will build (its vocabulary size is the tokenizer's, known only once it is trained:
        here the size asked for), or None when it comes from --model_name_or_path."""
        if self.args.model_name_or_path:
            return None
        return self.fresh_config(vocabulary_size_asked(self.args))

    def build_model(self, tokenizer):
        """The model to train: `--model_name_or_path` with `--config_overrides` over its configuration, or a fresh one
        of the preset with the tokenizer's vocabulary."""
        if self.args.model_name_or_path:
            return self.model_class.from_pretrained(self.args.model_name_or_path, **self.args.config_overrides)
        return self.model_class(self.fresh_config(len(tokenizer)))

    @torch.no_grad()
    def evaluate(self, model, loader, accelerator) -> dict:
        """The honest -ELBO (decoded latent's KL, one posterior sample per text) on the validation split."""
        model.eval()
        sums = torch.zeros(4, dtype=torch.float64)
        count = tokens = 0
        devices = [accelerator.device] if accelerator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # a fixed sample, and the training RNG stream left untouched
            torch.manual_seed(self.args.seed)
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
        return {**elbo_summary(sums, count, tokens), "num_sentences": count, "num_predicted_tokens": tokens}


class LanguageTask(Task):
    """The language model: texts from a corpus known by name, local files or a Hub dataset."""

    config_class = TWRVAEConfig
    model_class = TWRVAEModel

    def load_splits(self) -> dict:
        args = self.args
        holdout = args.validation_split_percentage is not None
        if holdout and not 0 < args.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}."
            )
        splits, files = {"train": args.train_split}, {"train": args.train_file}
        if not holdout:
            splits["validation"], files["validation"] = args.validation_split, args.validation_file
        e2e_split_expression = any("+" in split or "[" in split for split in splits.values())
        if args.delexicalize or (args.dataset == "e2e" and e2e_split_expression and not any(files.values())):
            raw = {
                key: load_e2e(split, args.data_dir, delexicalized=args.delexicalize).select_columns(["text"])
                for key, split in splits.items()
            }
        else:
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
        return first_samples(raw, args)

    def tokenizer_texts(self, train_split):
        return train_split["text"]

    def forward_kwargs(self) -> dict:
        return {**super().forward_kwargs(), "free_bits": self.args.free_bits}

    @staticmethod
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
            logger.info(
                f"{count} of {len(encoded)} {name} texts were longer than --max_length={max_length} and truncated"
            )
        return encoded.remove_columns("truncated"), count

    def collator(self, tokenizer):
        return CheckedCollator(
            DataCollatorWithPadding(
                tokenizer, padding="longest", pad_to_multiple_of=getattr(self.args, "pad_to_multiple_of", None)
            ),
            len(tokenizer),
        )


class CheckedCollator:
    """Pads a batch and checks it on the host (`check_batch`: ids in the vocabulary, right padding, no empty row),
    so that the model need not read its inputs back from the device (`inputs_checked_by_caller`)."""

    def __init__(self, pad, vocab_size: int):
        self.pad, self.vocab_size = pad, vocab_size

    def __call__(self, features: list[dict]) -> dict:
        return check_batch(self.pad(features), self.vocab_size)


class DialogueTask(Task):
    """The dialogue model: (context, response) pairs of the dialogues of a corpus known by name or of local files."""

    config_class = TWRCVAEConfig
    model_class = TWRCVAEModel

    def preset(self) -> str:
        if self.args.preset in CVAE_PRESETS:
            return self.args.preset
        if self.args.preset == "twr-vae":  # train.py's default, i.e. no preset chosen
            return DEFAULT_DIALOGUE_PRESET
        raise ValueError(
            f"--preset {self.args.preset} is a language model; a dialogue corpus needs a dialogue preset: "
            f"{sorted(CVAE_PRESETS)}."
        )

    def context_window(self) -> int:
        """How many turns before a response make its context: the model's."""
        if "context_window" in self.args.config_overrides:
            return int(self.args.config_overrides["context_window"])
        if self.args.model_name_or_path:
            return AutoConfig.from_pretrained(self.args.model_name_or_path).context_window
        return TWRCVAEConfig.from_preset(self.preset()).context_window

    def load_splits(self) -> dict:
        """Pairs for `train` and `validation`; `--validation_split_percentage` holds out whole dialogues, so that no
        dialogue is seen in both."""
        args = self.args
        holdout = args.validation_split_percentage is not None
        if holdout and not 0 < args.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}."
            )
        if args.dataset_name:
            raise ValueError(
                "Dialogue corpora are read from files: pass --dataset NAME with --data_dir, or --train_file."
            )
        splits, files = {"train": args.train_split}, {"train": args.train_file}
        if not holdout:
            splits["validation"], files["validation"] = args.validation_split, args.validation_file
        dialogues = load_dialogues(splits, dataset=args.dataset, data_dir=args.data_dir, files=files)
        if holdout:
            parts = dialogues["train"].train_test_split(
                test_size=args.validation_split_percentage / 100, seed=args.seed
            )
            dialogues = {"train": parts["train"], "validation": parts["test"]}
        window = self.context_window()
        raw = {key: dialogue_pairs(value, context_window=window) for key, value in dialogues.items()}
        return first_samples(raw, args)

    def tokenizer_texts(self, train_split):
        """Every turn of the training dialogues once: each response, and each dialogue's first turn."""
        for row in train_split:
            if row["turn"] == 1:
                yield row["context"][0]
            yield row["response"]

    @staticmethod
    def tokenize(dataset, tokenizer, max_length: int, name: str):
        """Token ids of the response and of every context utterance, each cut to `max_length` tokens (keeping
        `<eos>`); `length`, the longest of them, groups similar pairs into batches."""
        if max_length < 3:
            raise ValueError(f"--max_length must be >= 3 (<bos>, a word, <eos>), got {max_length}.")
        eos = tokenizer.eos_token_id

        def cut(row):
            return row[: max_length - 1] + [eos] if len(row) > max_length else row

        def encode(batch):
            responses = tokenizer(batch["response"])["input_ids"]
            contexts = [tokenizer(turns)["input_ids"] for turns in batch["context"]]
            truncated = [
                len(response) > max_length or any(len(turn) > max_length for turn in context)
                for response, context in zip(responses, contexts, strict=True)
            ]
            responses = [cut(row) for row in responses]
            contexts = [[cut(turn) for turn in context] for context in contexts]
            return {
                "input_ids": responses,
                "context_input_ids": contexts,
                "context_speakers": batch["context_speakers"],
                "length": [
                    max([len(response)] + [len(turn) for turn in context])
                    for response, context in zip(responses, contexts, strict=True)
                ],
                "truncated": truncated,
            }

        encoded = dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc=f"tokenizing {name}")
        return encoded.remove_columns("truncated"), sum(encoded["truncated"])

    def collator(self, tokenizer):
        if getattr(self.args, "pad_to_multiple_of", None):
            raise ValueError(
                "--pad_to_multiple_of pads the language models' batches; the dialogue models pad their own."
            )
        return DialogueCollator(tokenizer)


class DialogWAETask(DialogueTask):
    """DialogWAE and iVAE on the dialogue task's data: their own models, trained in rounds of three updates
    (`model.adversarial_update`), no KL options, validation by reconstruction. SeqGAN's task is its subclass."""

    adversarial = True

    def __init__(self, args, ivae: bool = False):
        super().__init__(args)
        self.config_class, self.model_class = (IVAEConfig, IVAEModel) if ivae else (DialogWAEConfig, DialogWAEModel)

    def preset(self) -> str:
        if self.args.preset in self.config_class.presets():
            return self.args.preset
        if self.args.preset == "twr-vae" and self.args.model_name_or_path:  # the saved model's own
            return self.config_class.presets()[0]
        raise ValueError(f"--preset {self.args.preset} is not one of {self.config_class.presets()}.")

    def adversarial_optimizers(self, model) -> tuple:
        """The model's optimisers at the run's rates (the authors' where not given)."""
        rates = {"generator_lr": self.args.generator_learning_rate, "critic_lr": self.args.critic_learning_rate}
        return model.adversarial_optimizers(
            self.args.learning_rate, **{k: v for k, v in rates.items() if v is not None}
        )

    def round_options(self, step: int) -> dict:
        """What `adversarial_update` takes for the round after `step` updates, beside the batches."""
        return {}

    def context_window(self) -> int:
        if "context_window" in self.args.config_overrides:
            return int(self.args.config_overrides["context_window"])
        if self.args.model_name_or_path:
            return AutoConfig.from_pretrained(self.args.model_name_or_path).context_window
        return self.config_class.from_preset(self.preset()).context_window

    def forward_kwargs(self) -> dict:
        return {}

    @torch.no_grad()
    def evaluate(self, model, loader, accelerator) -> dict:
        """-log p(x | z, c) of the validation responses, z from the posterior (one draw, seeded), per response and
        per token (the authors' `valid_loss_AE`, WAE:models/dialogwae.py:217-239)."""
        model.eval()
        total = tokens = count = 0.0
        devices = [accelerator.device] if accelerator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.args.seed)
            for batch in loader:
                output = model(**batch, reduction="none")
                total += output.reconstruction_loss.double().sum().item()
                tokens += float(batch["attention_mask"][:, 1:].sum())
                count += output.reconstruction_loss.shape[0]
        model.train()
        return {"reconstruction_loss": total / count, "token_nll": total / tokens, "num_responses": int(count)}


class SeqGANTask(DialogWAETask):
    """SeqGAN on the dialogue task's data: rounds of likelihood pre-training (`--generator_pretrain_steps`), of
    discriminator pre-training (`--discriminator_pretrain_steps`), then adversarial rounds; validation by the
    generator's likelihood."""

    def __init__(self, args):
        super().__init__(args)
        self.config_class, self.model_class = SeqGANConfig, SeqGANModel

    def adversarial_optimizers(self, model) -> tuple:
        rates = {"discriminator_lr": self.args.critic_learning_rate, "baseline_lr": self.args.baseline_learning_rate}
        return model.adversarial_optimizers(
            self.args.learning_rate, **{k: v for k, v in rates.items() if v is not None}
        )

    def round_options(self, step: int) -> dict:
        first, second = self.args.generator_pretrain_steps, self.args.discriminator_pretrain_steps
        phase = 0 if step < first else 1 if step < first + second else 2
        return {"phase": SEQGAN_PHASES[phase]}


class DialogueCollator:
    """Pads responses (`input_ids`, `attention_mask`) and contexts (`context_*`, see `pad_contexts`)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict]) -> dict:
        batch = self.tokenizer.pad(
            [{"input_ids": feature["input_ids"]} for feature in features], padding="longest", return_tensors="pt"
        )
        batch = dict(batch)
        batch.update(pad_contexts(features, self.tokenizer.pad_token_id))
        return batch


def first_samples(raw: dict, args) -> dict:
    """`--max_train_samples` and `--max_eval_samples`: the first N rows of each split."""
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
    if args.max_eval_samples:
        raw["validation"] = raw["validation"].select(range(min(args.max_eval_samples, len(raw["validation"]))))
    return raw


def tokenizer_defaults(dataset: str | None) -> dict:
    """The tokenizer settings of a corpus known by name (its vocabulary size, minimum frequency, pre-tokenisation)."""
    defaults = dict(CORPORA[dataset].tokenizer) if dataset in CORPORA else {}
    defaults.update(dict(DIALOGUE_CORPORA[dataset].tokenizer) if dataset in DIALOGUE_CORPORA else {})
    return defaults


def vocabulary_size_asked(args) -> int:
    """The vocabulary size the tokenizer is asked for (the run's, before the data is read)."""
    return args.vocab_size or tokenizer_defaults(args.dataset).get("vocab_size", DEFAULT_VOCAB_SIZE)


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
    defaults = tokenizer_defaults(args.dataset)
    for key in ("vocab_size", "min_frequency", "pre_tokenization"):
        if getattr(args, key) is not None:
            defaults[key] = getattr(args, key)
    defaults.setdefault("vocab_size", DEFAULT_VOCAB_SIZE)
    tokenizer = train_tokenizer(train_texts, model_max_length=args.max_length, **defaults)
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise ValueError(
            f"The training text gives a vocabulary of only the {len(tokenizer)} special tokens: every word is seen "
            f"fewer than min_frequency={defaults.get('min_frequency', 1)} times, so every word would be <unk>. Train "
            "on more text, or lower --min_frequency."
        )
    return tokenizer


__all__ = [
    "DialogWAETask",
    "SeqGANTask",
    "DialogueCollator",
    "DialogueTask",
    "LanguageTask",
    "Task",
    "choose_task",
    "get_tokenizer",
    "tokenizer_defaults",
]
