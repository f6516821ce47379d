"""The dialogue task of training/train.py: (context, response) pairs, their tokenisation and batches, the model.

train.py picks this task when the preset is a dialogue one (`twr-cvae`, `cvae`), the dataset a dialogue corpus
(`dailydialog`, `switchboard`), or `--model_name_or_path` a saved dialogue model; everything else in train.py (the
loop, KL schedules, validation by -ELBO, checkpoints, saving) is shared with the language model.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoConfig

from modeling_twrvae import CVAE_PRESETS, TWRCVAEConfig, TWRCVAEModel
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA, dialogue_pairs, load_dialogues
from modeling_twrvae.modeling_twrcvae import pad_contexts

DEFAULT_PRESET = "twr-cvae"


def is_dialogue(args) -> bool:
    if args.preset in CVAE_PRESETS or args.dataset in DIALOGUE_CORPORA:
        return True
    if args.model_name_or_path:
        config_file = Path(args.model_name_or_path) / "config.json"
        if config_file.is_file():
            return json.loads(config_file.read_text()).get("model_type") == TWRCVAEConfig.model_type
        return AutoConfig.from_pretrained(args.model_name_or_path).model_type == TWRCVAEConfig.model_type
    return False


def preset(args) -> str:
    if args.preset in CVAE_PRESETS:
        return args.preset
    if args.preset == "twr-vae":  # train.py's default, i.e. no preset chosen
        return DEFAULT_PRESET
    raise ValueError(
        f"--preset {args.preset} is a language model; a dialogue corpus needs a dialogue preset: {sorted(CVAE_PRESETS)}."
    )


def context_window(args) -> int:
    if "context_window" in args.config_overrides:
        return int(args.config_overrides["context_window"])
    if args.model_name_or_path:
        return AutoConfig.from_pretrained(args.model_name_or_path).context_window
    return TWRCVAEConfig.from_preset(preset(args)).context_window


def load_splits(args) -> dict:
    """Pairs for `train` and `validation`; `--validation_split_percentage` holds out whole dialogues, so that no
    dialogue is seen in both."""
    holdout = args.validation_split_percentage is not None
    if holdout and not 0 < args.validation_split_percentage < 100:
        raise ValueError(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}.")
    if args.dataset_name:
        raise ValueError("Dialogue corpora are read from files: pass --dataset NAME with --data_dir, or --train_file.")
    splits, files = {"train": args.train_split}, {"train": args.train_file}
    if not holdout:
        splits["validation"], files["validation"] = args.validation_split, args.validation_file
    dialogues = load_dialogues(splits, dataset=args.dataset, data_dir=args.data_dir, files=files)
    if holdout:
        parts = dialogues["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        dialogues = {"train": parts["train"], "validation": parts["test"]}
    window = context_window(args)
    raw = {key: dialogue_pairs(value, context_window=window) for key, value in dialogues.items()}
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
    if args.max_eval_samples:
        raw["validation"] = raw["validation"].select(range(min(args.max_eval_samples, len(raw["validation"]))))
    return raw


def tokenizer_texts(pairs):
    """Every turn of the training dialogues once: each response, and each dialogue's first turn."""
    for row in pairs:
        if row["turn"] == 1:
            yield row["context"][0]
        yield row["response"]


def tokenizer_defaults(dataset: str | None) -> dict:
    return dict(DIALOGUE_CORPORA[dataset].tokenizer) if dataset in DIALOGUE_CORPORA else {}


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


def build_model(args, tokenizer) -> TWRCVAEModel:
    if args.model_name_or_path:
        return TWRCVAEModel.from_pretrained(args.model_name_or_path, **args.config_overrides)
    config = TWRCVAEConfig.from_preset(preset(args), vocab_size=len(tokenizer), **args.config_overrides)
    return TWRCVAEModel(config)


__all__ = [
    "DialogueCollator",
    "build_model",
    "is_dialogue",
    "load_splits",
    "tokenize",
    "tokenizer_defaults",
    "tokenizer_texts",
]
