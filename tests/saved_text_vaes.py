"""Small saved text VAEs with a real (PTB) tokenizer, for the command line, the pipeline and the demo page."""

from pathlib import Path

import torch

from helpers import informative, tiny_model

# Short outputs keep decoding fast and the page readable; texts over 18 words are "over-long" for these models.
MAX_LENGTH = 20


def save_text_vae(folder: Path, tokenizer, collapsed: bool = False) -> Path:
    """A tiny TWR-VAE whose outputs depend on z (`informative`), or one whose decoder ignores z (collapsed)."""
    model = informative(tiny_model("twr-vae", len(tokenizer)))
    if collapsed:
        with torch.no_grad():  # the decoder reads z through its initial state and its inputs: cut both
            model.decoder.init_state.weight.zero_()
            model.decoder.rnn.weight_ih_l0[:, model.config.embedding_size :].zero_()
    model.generation_config.max_length = MAX_LENGTH
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
