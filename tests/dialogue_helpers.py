"""Tiny dialogue models and real DailyDialog pairs for the dialogue tests."""

import torch

from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel, train_tokenizer
from modeling_twrvae.data.dialogue_corpora import dialogue_pairs, read_dailydialog
from modeling_twrvae.modeling_twrcvae import pad_contexts

from helpers import DATA_DIR

TINY_CVAE = {
    "embedding_size": 12,
    "utterance_hidden_size": 8,
    "context_hidden_size": 10,
    "decoder_hidden_size": 9,
    "latent_size": 5,
    "prior_hidden_size": 7,
    "bow_hidden_size": 6,
    "context_window": 4,
}


def tiny_cvae(preset: str, vocab_size: int, seed: int = 0, **overrides) -> TWRCVAEModel:
    torch.manual_seed(seed)
    return TWRCVAEModel(TWRCVAEConfig.from_preset(preset, vocab_size=vocab_size, **{**TINY_CVAE, **overrides}))


def dailydialog_pairs(count: int = 40, context_window: int = 4):
    dialogues = read_dailydialog(DATA_DIR / "dailydialog" / "valid.utts.txt").select(range(10))
    return dialogue_pairs(dialogues, context_window=context_window).select(range(count))


def dialogue_tokenizer():
    dialogues = read_dailydialog(DATA_DIR / "dailydialog" / "valid.utts.txt").select(range(200))
    return train_tokenizer(
        (turn for turns in dialogues["turns"] for turn in turns), vocab_size=800, pre_tokenization="punctuation"
    )


def batch_of(pairs, tokenizer) -> dict:
    """Model inputs for rows of `dialogue_pairs`."""
    features = [
        {"context_input_ids": tokenizer(row["context"])["input_ids"], "context_speakers": row["context_speakers"]}
        for row in pairs
    ]
    batch = pad_contexts(features, tokenizer.pad_token_id)
    batch.update(tokenizer([row["response"] for row in pairs], padding=True, return_tensors="pt"))
    return batch
