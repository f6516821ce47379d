"""The bag-of-words loss of TWRVAEModel (`bow_loss_weight`, Zhao et al., 2017): z must predict the text's words."""

import pytest
import torch

from modeling_twrvae import TWRVAEConfig, TWRVAEModel

from helpers import tiny_model


@pytest.fixture
def batch(tokenizer, ptb_lines):
    return tokenizer(ptb_lines[:6], padding=True, return_tensors="pt")


def test_the_loss_adds_the_weighted_bag_of_words_term(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer), seed=0, bow_loss_weight=0.5).eval()
    out = model(**batch, reduction="none")
    logits = model.bow_head(out.latents).log_softmax(-1)
    ids, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:]
    expected = -(logits.gather(1, ids) * mask).sum(1)  # every predicted token, <eos> included, under one softmax
    torch.testing.assert_close(out.bow_loss, expected)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + out.kl_regularizer + 0.5 * out.bow_loss)


def test_the_bag_of_words_gradient_reaches_the_encoder_and_not_the_decoder(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer), seed=0, bow_loss_weight=1.0).train()
    model(**batch).bow_loss.backward()
    assert model.encoder.embed_tokens.weight.grad.abs().sum() > 0
    assert model.decoder.lm_head.weight.grad is None  # the decoder is not in the bag-of-words path


def test_without_the_weight_there_is_no_head_and_no_loss(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer), seed=0).eval()
    assert not hasattr(model, "bow_head") and model(**batch).bow_loss is None
    with pytest.raises(ValueError, match="bow_loss_weight"):
        TWRVAEConfig(bow_loss_weight=-1.0)


def test_the_head_resizes_with_the_vocabulary_and_round_trips(tokenizer, batch, tmp_path):
    model = tiny_model("twr-vae", len(tokenizer), seed=0, bow_loss_weight=1.0).eval()
    model.resize_token_embeddings(len(tokenizer) + 3)
    assert model.bow_head[2].out_features == len(tokenizer) + 3
    model.save_pretrained(tmp_path)
    loaded = TWRVAEModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**batch).bow_loss, model(**batch).bow_loss)
