"""TWR-VAE, HR-VAE and the vanilla VAE-RNN as one transformers model.

The encoder reads the sentence and gives a Gaussian posterior q(z_t | x_1..t) at every timestep; the decoder is an
RNN language model started from, and fed at every step with, one latent z. The configuration decides which latent
the decoder gets (z_T, or the mean or sum of z_1..z_T) and which timesteps the KL regulariser averages over, and
turns on two baselines of TWR-VAE Table 2: BN-VAE's batch-normalised posterior mean
(`posterior_mean_batch_norm_gamma`) and SA-VAE's refinement of the posterior (`svi_steps`, in `semi_amortized.py`).

Sequences are right-padded; T is each sequence's own number of real tokens (`<bos> w_1 .. w_n <eos>`), so a
sequence gets the same loss in a mixed-length batch as alone.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .aggregate_posterior import AGGREGATE_POSTERIOR_FILE, load_mixture, parameters_digest, save_mixture
from .checkpoint_checks import FINGERPRINT_KEY, check_loading_info, check_model_folder
from .configuration_twrvae import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, TWRVAEConfig, check_refinable
from .distributions import DiagonalGaussianDistribution
from .dropout import Dropout
from .file_utils import disk_full_error, move_files_into, weights_fingerprint
from .generation_twrvae import TWRVAEDecoderCache, TWRVAEGenerationMixin, check_latents
from .latent_arithmetic import ATTRIBUTE_VECTORS_FILE, load_attribute_vectors, save_attribute_vectors
from .output_layer_nll import at_least_fp32, bag_of_words_loss, output_layer_logits_and_nll, output_layer_nll
from .recurrence import lstm_hidden_and_cell_states, run_rnn
from .semi_amortized import refine_posterior as refine_gaussian_posterior

_RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
DEFAULT_MAX_LENGTH = 64
IGNORE_INDEX = -100  # in `labels`: no loss at this position, as in transformers' language models


def reject_unknown_keywords(forward):
    """Make `forward` refuse keywords it does not take with a `TypeError` that names them and the closest known one
    (`kl_wieght` -> `kl_weight`), rather than swallow them. The signature seen by `inspect` stays `forward`'s own, so
    `generate` and `Trainer` see exactly the arguments that it accepts."""
    accepted = [name for name in inspect.signature(forward).parameters if name != "self"]

    @functools.wraps(forward)
    def checked(self, *args, **kwargs):
        unknown = [key for key in kwargs if key not in accepted]
        if unknown:
            raise TypeError(unknown_keywords_message(f"{type(self).__name__}.forward()", unknown, accepted))
        return forward(self, *args, **kwargs)

    return checked


def unknown_keywords_message(function: str, unknown: list[str], accepted: list[str]) -> str:
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"{function} got unexpected keyword argument(s) {', '.join(parts)}; it accepts {', '.join(accepted)}."


@dataclass
class TWRVAEOutput(ModelOutput):
    r"""
    Output of [`TWRVAEModel.forward`]. Losses are sums over each sentence's tokens (or timesteps), averaged over the
    batch; with `reduction="none"` they are one value per sentence.

    loss (`torch.FloatTensor`):
        `reconstruction_loss + kl_weight * kl_regularizer` (+ `bow_loss_weight * bow_loss` with a bag-of-words
        loss), the objective that training minimises.
    reconstruction_loss (`torch.FloatTensor`):
        -log p(x | z) of the predicted tokens (every token after `<bos>`, `<eos>` included) under the decoded z.
    kl_regularizer (`torch.FloatTensor`):
        The KL term that is optimised: KL(q(z_t | x_1..t) || N(0, I)) averaged over the regularised timesteps.
    kl_decoded (`torch.FloatTensor`):
        KL(q(z | x) || N(0, I)) of the latent actually fed to the decoder; the honest ELBO is
        `-(reconstruction_loss + kl_decoded)`.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Decoder scores; position t predicts token t + 1. `None` when the forward pass was given `return_logits=False`.
    latents (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        The latent z that the decoder read.
    posterior_mean (`torch.FloatTensor` of shape `(batch_size, sequence_length, latent_size)`):
        Mean of q(z_t | x_1..t) at every timestep (values at padding positions are meaningless).
    posterior_logvar (`torch.FloatTensor` of shape `(batch_size, sequence_length, latent_size)`):
        Log-variance of q(z_t | x_1..t) at every timestep.
    cache (`TWRVAEDecoderCache`):
        With `latents` given: the decoder's recurrent state after the last input position (`h`, or `(h, c)` for an
        LSTM, each of shape `(num_layers, batch_size, hidden_size)`), which continues decoding.
    hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
        One tensor of shape `(batch_size, decoded_length, hidden_size)`: the decoder's top RNN layer at every decoded
        position, before the output dropout and `lm_head` (an RNN stacked in one module gives no lower layers).
    refined_posterior_mean (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        With the SA-VAE refinement (`config.svi_steps` in training, `refine_steps`): the mean of the refined
        posterior q_K(z | x) of the decoded latent, which `latents`, `kl_regularizer` and `kl_decoded` then come from
        (`posterior_mean` stays the encoder's own). `None` without refinement.
    refined_posterior_logvar (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        The log-variance of that refined posterior.
    bow_loss (`torch.FloatTensor`):
        With `config.bow_loss_weight > 0`: the bag-of-words loss, -log of every predicted token under one softmax
        from the decoded z (Zhao et al., 2017), summed per text; `loss` adds `bow_loss_weight` times it. `None`
        otherwise.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    kl_regularizer: torch.FloatTensor | None = None
    kl_decoded: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    posterior_mean: torch.FloatTensor | None = None
    posterior_logvar: torch.FloatTensor | None = None
    cache: TWRVAEDecoderCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    refined_posterior_mean: torch.FloatTensor | None = None
    refined_posterior_logvar: torch.FloatTensor | None = None
    bow_loss: torch.FloatTensor | None = None


def decoded_rows(timesteps: torch.Tensor, lengths: torch.LongTensor, latent_mode: str) -> torch.Tensor:
    """(batch, size) of a per-timestep (batch, time, size) tensor as the decoded latent reads it: the last real
    timestep (`"last"`), or the mean or sum over the real timesteps."""
    if latent_mode == "last":
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, timesteps.shape[-1])
        return timesteps.gather(1, last).squeeze(1)
    mask = _length_mask(lengths, timesteps.shape[1]).unsqueeze(-1).to(timesteps.dtype)
    total = (timesteps * mask).sum(dim=1)
    return total / lengths.to(timesteps.dtype).unsqueeze(-1) if latent_mode == "mean" else total


class PosteriorMeanBatchNorm(nn.Module):
    """BN-VAE's batch normalisation of the posterior mean (Zhu et al., 2020; `posterior_mean_batch_norm_gamma`).

    BatchNorm1d over the latent dimensions with the scale fixed at gamma (read from the configuration, so no
    initialisation, optimiser or checkpoint changes it) and a learnable shift `bias` starting at 0; eps and momentum
    are BatchNorm1d's defaults, as in the authors' code. The statistics are those of the decoded latent's posterior
    mean, one row per sentence (padding never enters them); the same affine map then normalises every timestep.
    Training mode normalises with the batch's mean and biased variance and updates `running_mean` and `running_var`
    (with the unbiased variance); evaluation mode uses those running estimates.
    """

    def __init__(self, config: TWRVAEConfig):
        super().__init__()
        self.config = config
        self.eps = BATCH_NORM_EPS
        self.momentum = BATCH_NORM_MOMENTUM
        self.bias = nn.Parameter(torch.zeros(config.latent_size))
        self.register_buffer("running_mean", torch.zeros(config.latent_size))
        self.register_buffer("running_var", torch.ones(config.latent_size))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @property
    def gamma(self) -> float:
        """The fixed scale."""
        return self.config.posterior_mean_batch_norm_gamma

    def reset_parameters(self) -> None:
        init.zeros_(self.bias)
        init.zeros_(self.running_mean)
        init.ones_(self.running_var)
        init.zeros_(self.num_batches_tracked)

    def forward(self, mean: torch.Tensor, lengths: torch.LongTensor) -> torch.Tensor:
        """Normalise (batch, time, latent_size) posterior means with the statistics of the decoded latent's."""
        compute = torch.promote_types(mean.dtype, torch.float32)  # statistics in fp32 at least
        if self.training:
            decoded = decoded_rows(mean, lengths, self.config.latent_mode).to(compute)
            if decoded.shape[0] < 2:
                raise ValueError(
                    "BN-VAE (`posterior_mean_batch_norm_gamma`) normalises over the batch, so training needs at least "
                    "2 sentences per batch (the authors' training loop skips smaller batches, "
                    "valdersoul/bn-vae text_anneal_fb.py:354-355)."
                )
            batch_mean = decoded.mean(dim=0)
            batch_var = decoded.var(dim=0, unbiased=False)
            with torch.no_grad():
                count = decoded.shape[0]
                self.running_mean.lerp_(batch_mean.detach().to(self.running_mean.dtype), self.momentum)
                unbiased = batch_var.detach() * (count / (count - 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
                self.num_batches_tracked.add_(1)
        else:
            batch_mean, batch_var = self.running_mean.to(compute), self.running_var.to(compute)
        scale = self.gamma * torch.rsqrt(batch_var + self.eps)
        shift = self.bias.to(compute) - batch_mean * scale
        return (mean.to(compute) * scale + shift).to(mean.dtype)

    def extra_repr(self) -> str:
        return f"{self.config.latent_size}, gamma={self.gamma}, eps={self.eps}, momentum={self.momentum}"


class TWRVAEEncoder(nn.Module):
    """Embeds the sentence, runs the stacked RNN and gives (mean, logvar) of q(z_t | x_1..t) for every t."""

    def __init__(self, config: TWRVAEConfig):
        super().__init__()
        self.config = config
        rnn_class = _RNN_CLASSES[config.rnn_type]
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = Dropout(config.dropout)
        # One module per layer (rather than nn.LSTM(num_layers=...)) because HR-VAE reads every layer's states.
        self.layers = nn.ModuleList(
            rnn_class(config.embedding_size if i == 0 else config.hidden_size, config.hidden_size, batch_first=True)
            for i in range(config.num_layers)
        )
        self.mean = nn.Linear(config.posterior_input_size, config.latent_size)
        self.logvar = nn.Linear(config.posterior_input_size, config.latent_size)
        gamma = config.posterior_mean_batch_norm_gamma
        self.mean_batch_norm = PosteriorMeanBatchNorm(config) if gamma is not None else None

    def forward(
        self, input_ids: torch.LongTensor, lengths: torch.LongTensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of q(z_t | x_1..t) at every timestep; `lengths` (each sequence's number of real tokens,
        all of them when not given) is what BN-VAE's batch statistics read in training."""
        hidden = self.dropout(self.embed_tokens(input_ids))
        hiddens, cells = [], []
        for i, layer in enumerate(self.layers):
            if i > 0:
                hidden = self.dropout(hidden)
            if self.config.posterior_input == "hc":
                hidden, cell = lstm_hidden_and_cell_states(layer, hidden)
                cells.append(cell)
            else:
                hidden, _ = layer(hidden)
            hiddens.append(hidden)
        if self.config.posterior_input == "hc":
            # [h_1; c_1; h_2; c_2; ...], the layout of HR-VAE's code, so that its weights carry over as they are.
            features = torch.cat([part for pair in zip(hiddens, cells, strict=True) for part in pair], dim=-1)
        else:
            features = hidden
        mean = self.mean(features)
        if self.mean_batch_norm is not None:
            if lengths is None:
                lengths = torch.full((input_ids.shape[0],), input_ids.shape[1], device=input_ids.device)
            mean = self.mean_batch_norm(mean, lengths)
        return mean, self.logvar(features)


class TWRVAEDecoder(nn.Module):
    """An RNN language model whose initial state and every input carry the latent z."""

    def __init__(self, config: TWRVAEConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = Dropout(config.dropout)
        # Identity when off (the papers' presets), so that no dropout module acts on the output at all.
        self.output_dropout = Dropout(config.decoder_output_dropout) if config.decoder_output_dropout else nn.Identity()
        if config.decoder_init == "linear":
            self.init_state = nn.Linear(config.latent_size, config.num_layers * config.hidden_size, bias=False)
        self.rnn = _RNN_CLASSES[config.rnn_type](
            config.embedding_size + config.decoder_step_latent_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)

    def initial_state(self, latents: torch.Tensor) -> RecurrentState:
        """(num_layers, batch, hidden) state(s) that start decoding from z."""
        config = self.config
        batch = latents.shape[0]
        if config.decoder_init == "linear":
            hidden = self.init_state(latents).view(batch, config.num_layers, config.hidden_size).transpose(0, 1)
            hidden = hidden.contiguous()
            return (hidden, hidden) if config.rnn_type == "lstm" else hidden
        per_layer = latents.view(batch, -1, config.state_size).transpose(0, 1)
        per_layer = per_layer.expand(config.num_layers, batch, config.state_size).contiguous()
        if config.rnn_type == "lstm":
            hidden, cell = per_layer.split(config.hidden_size, dim=-1)
            return hidden.contiguous(), cell.contiguous()
        return per_layer

    def step_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The part of z read beside the word at every step: all of it, or the last layer's slice (HR-VAE code)."""
        if self.config.decoder_latent_input == "last_layer":
            return latents[:, -self.config.state_size :]
        return latents

    def decoder_input_ids(self, input_ids: torch.LongTensor, starts_sentence: bool = True) -> torch.LongTensor:
        """The words the decoder reads: word dropout when training; when inputless, `<bos>` at the sentence's first
        step (`starts_sentence`: position 0 is that step) and `<unk>` at every later one, as HR-VAE's code."""
        config = self.config
        if config.decoder_input == "inputless":
            words = torch.full_like(input_ids, config.unk_token_id)
            if starts_sentence:
                words[:, 0] = config.bos_token_id
            return words
        if self.training and config.word_dropout > 0:
            drop = torch.rand(input_ids.shape, device=input_ids.device) < config.word_dropout
            drop &= (input_ids != config.bos_token_id) & (input_ids != config.pad_token_id)
            return input_ids.masked_fill(drop, config.unk_token_id)
        return input_ids

    def hidden_states(
        self, input_ids: torch.LongTensor, latents: torch.Tensor, state: RecurrentState | None = None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """The top layer's output at every position (before dropout and `lm_head`), and the state after the last."""
        starts_sentence = state is None
        if starts_sentence:
            state = self.initial_state(latents)
        embeddings = self.dropout(self.embed_tokens(self.decoder_input_ids(input_ids, starts_sentence)))
        steps = self.step_latents(latents).unsqueeze(1).expand(-1, input_ids.shape[1], -1)
        return run_rnn(self.rnn, torch.cat([embeddings, steps], dim=-1), state)

    def output_features(
        self, input_ids: torch.LongTensor, latents: torch.Tensor, state: RecurrentState | None = None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """What `lm_head` reads at every position (the top layer's output after output dropout), and the state after
        the last."""
        output, state = self.hidden_states(input_ids, latents, state)
        return self.output_dropout(output), state

    def forward(
        self, input_ids: torch.LongTensor, latents: torch.Tensor, state: RecurrentState | None = None
    ) -> tuple[torch.Tensor, RecurrentState]:
        features, state = self.output_features(input_ids, latents, state)
        return self.lm_head(features), state


class TWRVAEPreTrainedModel(PreTrainedModel):
    config: TWRVAEConfig
    config_class = TWRVAEConfig
    base_model_prefix = "twrvae"
    main_input_name = "input_ids"
    _no_split_modules = ["TWRVAEEncoder", "TWRVAEDecoder"]
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        bound = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.uniform_(module.weight, -bound, bound)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            for name, param in module.named_parameters(recurse=False):
                if name.startswith("weight"):
                    init.uniform_(param, -bound, bound)
                else:
                    init.zeros_(param)
        elif isinstance(module, PosteriorMeanBatchNorm):
            module.reset_parameters()  # shift 0, running statistics of N(0, 1); the scale is the config's gamma

    # ----- the vocabulary: every layer whose size is the vocabulary's follows `resize_token_embeddings` -----

    def _vocabulary_embeddings(self) -> list[nn.Embedding]:
        """Every embedding of token ids (the input embeddings and any other), distinct modules."""
        raise NotImplementedError

    def _vocabulary_outputs(self) -> list[tuple[nn.Module, str]]:
        """(parent, attribute) of every linear layer with one output per token (`lm_head` first)."""
        raise NotImplementedError

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the input embeddings; they must have the model's shape (`resize_token_embeddings` changes the
        vocabulary, and resizes every layer that depends on it)."""
        current = self.get_input_embeddings()
        if not isinstance(value, nn.Embedding) or value.weight.shape != current.weight.shape:
            shape = tuple(value.weight.shape) if isinstance(value, nn.Embedding) else type(value).__name__
            raise ValueError(
                f"The input embeddings must be an nn.Embedding of shape {tuple(current.weight.shape)} (vocab_size, "
                f"embedding_size), got {shape}: use `resize_token_embeddings` to change the vocabulary."
            )
        parent, name = self._input_embeddings_owner()
        setattr(parent, name, value)

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """Replace the output layer (`lm_head`); it must have the model's shape (see `set_input_embeddings`)."""
        parent, name = self._vocabulary_outputs()[0]
        current = getattr(parent, name)
        if (
            not isinstance(new_embeddings, nn.Linear)
            or new_embeddings.weight.shape != current.weight.shape
            or (new_embeddings.bias is None) != (current.bias is None)
        ):
            shape = tuple(new_embeddings.weight.shape) if isinstance(new_embeddings, nn.Linear) else None
            raise ValueError(
                f"The output layer must be an nn.Linear of weight shape {tuple(current.weight.shape)} (vocab_size, "
                f"hidden_size){' with a bias' if current.bias is not None else ''}, got "
                f"{shape or type(new_embeddings).__name__}: use `resize_token_embeddings` to change the vocabulary."
            )
        setattr(parent, name, new_embeddings)

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """transformers' `resize_token_embeddings`: every embedding of token ids, the output layer (and the
        bag-of-words head of the `cvae` preset) get `new_num_tokens` rows (rounded up to a multiple of
        `pad_to_multiple_of`), the existing tokens keep their weights, and `config.vocab_size` follows. The config's
        `vocab_fingerprint` of the old tokenizer is dropped: save the new tokenizer beside the model."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if new_num_tokens is not None or pad_to_multiple_of is not None:
            self.config.__dict__.pop(FINGERPRINT_KEY, None)
        return embeddings

    def _resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of=None, mean_resizing=True):
        current = self.config.vocab_size
        for name, value in (("new_num_tokens", new_num_tokens), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        size = current if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
        if size == current and new_num_tokens is None and pad_to_multiple_of is None:
            return self.get_input_embeddings()
        candidate = copy.deepcopy(self.config)
        try:
            candidate.vocab_size = size  # refused here, before any layer changes, if a special token would be cut off
        except ValueError as error:
            raise ValueError(f"Cannot resize the vocabulary to {size} tokens: {error}") from error
        for embedding in self._vocabulary_embeddings():
            self._get_resized_embeddings(embedding, size, None, mean_resizing)  # resized in place
        for parent, name in self._vocabulary_outputs():
            old = getattr(parent, name)
            new = self._get_resized_lm_head(old, size, mean_resizing=mean_resizing)
            new.requires_grad_(old.weight.requires_grad)
            setattr(parent, name, new)
        return self.get_input_embeddings()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        folder = Path(str(pretrained_model_name_or_path))
        if folder.is_dir():
            # a `generation_config` given here replaces the folder's file, which is then not read
            check_model_folder(folder, kwargs.get("subfolder", ""), generation_config="generation_config" not in kwargs)
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        check_loading_info(
            pretrained_model_name_or_path, info, ignore_mismatched_sizes=kwargs.get("ignore_mismatched_sizes", False)
        )
        generation_config = getattr(model, "generation_config", None)  # a model that generates (not DialogWAE)
        if generation_config is not None and generation_config.max_length is None:  # no generation_config.json
            generation_config.max_length = DEFAULT_MAX_LENGTH
        if getattr(model.config, "aggregate_posterior", None) is not None:
            _load_aggregate_posterior(model, pretrained_model_name_or_path, kwargs)
        if hasattr(model, "add_attribute_vector"):
            _load_attribute_vectors(model, pretrained_model_name_or_path, kwargs)
        return (model, info) if wants_info else model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, written into a temporary folder and then renamed file by file into
        `save_directory`: a process that is reading (memory-mapping) the old files keeps them whole, and a crash
        leaves either the old file or the new one."""
        if self.config.model_type == "twrvae":
            # Name the "text-vae" pipeline in config.json. Importing it here also makes transformers copy its file
            # beside this one (it copies a saved model's relative imports), so the remote-code load finds it.
            from .pipeline_twrvae import record_pipeline

            record_pipeline(self.config)
        if kwargs.get("push_to_hub"):
            return super().save_pretrained(save_directory, *args, **kwargs)
        save_directory = Path(save_directory)
        if save_directory.is_file():
            raise OSError(f"{save_directory} is a file: `save_pretrained` needs a folder.")
        save_directory.mkdir(parents=True, exist_ok=True)
        temporary = save_directory / f".save_pretrained.{os.getpid()}.tmp"
        if temporary.exists():
            shutil.rmtree(temporary)
        mixture = _aggregate_posterior_to_save(self)
        vectors = self.attribute_vectors_to_save() if hasattr(self, "attribute_vectors_to_save") else {}
        try:
            result = super().save_pretrained(temporary, *args, **kwargs)
            # beside the weights, with the fingerprint of the weights just written
            if mixture is not None:
                save_mixture(mixture, temporary / AGGREGATE_POSTERIOR_FILE, weights_fingerprint(temporary))
            if vectors:
                save_attribute_vectors(vectors, temporary / ATTRIBUTE_VECTORS_FILE, weights_fingerprint(temporary))
            written = {path.name for path in temporary.iterdir()}
            move_files_into(temporary, save_directory)
            _remove_stale_shards(save_directory, written)
            for name in (AGGREGATE_POSTERIOR_FILE, ATTRIBUTE_VECTORS_FILE):  # none now: none of an earlier save stays
                if name not in written:
                    (save_directory / name).unlink(missing_ok=True)
        except OSError as error:
            raise disk_full_error(error, save_directory) from error
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return result


class TWRVAEModel(TWRVAEPreTrainedModel, TWRVAEGenerationMixin):
    """A text VAE with timestep-wise (TWR-VAE, HR-VAE) or last-step (vanilla VAE-RNN) KL regularisation."""

    def __init__(self, config: TWRVAEConfig):
        super().__init__(config)
        self.encoder = TWRVAEEncoder(config)
        self.decoder = TWRVAEDecoder(config)
        if config.bow_loss_weight > 0:
            self.bow_head = nn.Sequential(
                nn.Linear(config.latent_size, config.bow_hidden_size),
                nn.Tanh(),
                nn.Linear(config.bow_hidden_size, config.vocab_size),
            )
        self.post_init()
        if self.generation_config.max_length is None:  # else generate() falls back to 20, short for most corpora
            self.generation_config.max_length = DEFAULT_MAX_LENGTH

    def get_input_embeddings(self) -> nn.Embedding:
        """The encoder's embedding (the decoder has its own, which `resize_token_embeddings` resizes too)."""
        return self.encoder.embed_tokens

    def _input_embeddings_owner(self) -> tuple[nn.Module, str]:
        return self.encoder, "embed_tokens"

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder.lm_head

    def _vocabulary_embeddings(self) -> list[nn.Embedding]:
        return [self.encoder.embed_tokens, self.decoder.embed_tokens]

    def _vocabulary_outputs(self) -> list[tuple[nn.Module, str]]:
        outputs = [(self.decoder, "lm_head")]
        if hasattr(self, "bow_head"):
            outputs.append((self.bow_head, "2"))  # its last layer scores every word
        return outputs

    # Set by a caller that has checked its batches on the host before they reached the device (train.py's
    # collator, `check_batch`): the checks below read device values, which makes a GPU step wait for the host.
    inputs_checked_by_caller = False
    # Set for a step whose shapes depend on the batch's size and padded length only (train.py --pad_to_multiple_of):
    # the reconstruction loss then runs the output layer on every position rather than select the real ones.
    static_shapes = False

    def _check_inputs(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.LongTensor:
        if self.inputs_checked_by_caller and attention_mask is not None:
            return attention_mask.long().sum(dim=1)
        if input_ids.dim() != 2:
            raise ValueError(
                f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}."
            )
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError(f"`input_ids` is empty (shape {tuple(input_ids.shape)}): pass at least one sequence.")
        check_token_ids(input_ids, self.config.vocab_size, "input_ids")
        return right_padded_lengths(input_ids, attention_mask, "sequence")

    def posterior(
        self, posterior_mean: torch.Tensor, posterior_logvar: torch.Tensor, lengths: torch.LongTensor
    ) -> DiagonalGaussianDistribution:
        """q(z | x) of the decoded latent, from the per-timestep posteriors (closed form for mean and sum)."""
        mode = self.config.latent_mode
        if mode == "last":
            return DiagonalGaussianDistribution(
                decoded_rows(posterior_mean, lengths, mode), decoded_rows(posterior_logvar, lengths, mode)
            )
        mask = _length_mask(lengths, posterior_mean.shape[1]).unsqueeze(-1).to(posterior_mean.dtype)
        mean = (posterior_mean * mask).sum(dim=1)
        var = (posterior_logvar.exp() * mask).sum(dim=1)
        if mode == "mean":
            count = lengths.to(posterior_mean.dtype).unsqueeze(-1)
            mean, var = mean / count, var / count.pow(2)
        return DiagonalGaussianDistribution(mean, var.log())

    def sample_latents(
        self, posterior_mean: torch.Tensor, posterior_logvar: torch.Tensor, lengths: torch.LongTensor
    ) -> torch.Tensor:
        """Draw z as the model defines it: z_T, or the mean/sum of independently sampled z_1..z_T."""
        if self.config.latent_mode == "last":
            return self.posterior(posterior_mean, posterior_logvar, lengths).sample()
        timestep_latents = DiagonalGaussianDistribution(posterior_mean, posterior_logvar).sample()
        mask = _length_mask(lengths, posterior_mean.shape[1]).unsqueeze(-1).to(posterior_mean.dtype)
        latents = (timestep_latents * mask).sum(dim=1)
        if self.config.latent_mode == "mean":
            latents = latents / lengths.to(latents.dtype).unsqueeze(-1)
        return latents

    def timestep_kl_per_dimension(
        self, posterior_mean: torch.Tensor, posterior_logvar: torch.Tensor, lengths: torch.LongTensor
    ) -> torch.Tensor:
        """Per sequence and latent dimension: the KL to N(0, I) averaged over the regularised last timesteps.

        Sum over the last dimension for the regulariser of each sequence.
        """
        config = self.config
        kl = DiagonalGaussianDistribution(posterior_mean, posterior_logvar).kl_per_dimension()
        if config.kl_regularizer == "last":
            counts = torch.ones_like(lengths)
        else:
            # The papers' code keeps the last round(T * fraction) steps: Python's round, half to even, of a float64
            # product, which torch.round of the same float64 product reproduces exactly.
            counts = torch.round(lengths.double() * config.kl_timestep_fraction).long().clamp(min=1)
        positions = torch.arange(kl.shape[1], device=kl.device)
        selected = (positions < lengths[:, None]) & (positions >= (lengths - counts)[:, None])
        return (kl * selected.unsqueeze(-1).to(kl.dtype)).sum(dim=1) / counts.unsqueeze(-1).to(kl.dtype)

    @reject_unknown_keywords
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        cache: TWRVAEDecoderCache | None = None,
        kl_weight: float = 1.0,
        sample_posterior: bool | None = None,
        free_bits: float = 0.0,
        reduction: str = "mean",
        return_logits: bool = True,
        return_dict: bool | None = None,
        *,
        labels: torch.LongTensor | None = None,
        return_loss: bool = True,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        refine_steps: int | None = None,
    ) -> TWRVAEOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Right-padded token ids, each sequence `<bos> w_1 .. w_n <eos>` as the tokenizer makes them.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding. Defaults to every token that is not `<pad>`.
            latents (`torch.Tensor` of shape `(batch_size, latent_size)`, *optional*):
                Skip the encoder and run the decoder teacher-forced on `input_ids` from these latents: `loss` is then
                -log p(x | z) of the predicted tokens, and `cache` continues decoding (this is what `generate` runs).
            cache (`TWRVAEDecoderCache`, *optional*):
                With `latents`: the decoder state after the tokens already read; `input_ids` then holds only new
                tokens and no loss is computed.
            kl_weight (`float`, *optional*, defaults to 1.0):
                Weight of the KL regulariser in `loss` (annealing schedules change it during training).
            sample_posterior (`bool`, *optional*):
                Decode from a sample of q(z | x) (`True`) or from its mean (`False`). Defaults to sampling in
                training mode and the mean in eval mode, as the papers' code does.
            free_bits (`float`, *optional*, defaults to 0.0):
                Free bits (Kingma et al., 2016): in `loss`, each latent dimension's regulariser, averaged over the
                batch (over the sequence with `reduction="none"`), counts at least this many nats. The reported
                `kl_regularizer` is not clamped.
            reduction (`str`, *optional*, defaults to `"mean"`):
                `"mean"` averages the losses over the batch; `"none"` returns one value per sequence.
            return_logits (`bool`, *optional*, defaults to `True`):
                Return the scores of every position in `logits` (differentiable: a loss of your own may use them).
                On CPUs (fp32, outside autocast) the logits and the loss come from one output-layer product whose
                backward forms the loss's gradient in place, so a loop that only calls `model(**batch).loss`
                pays little for them. With `False` (what training and evaluation loops want: only the losses),
                `logits` is `None` and the output layer runs only at the positions that predict a real token, the
                fastest path with a large vocabulary. The losses are the same either way.
            return_dict (`bool`, *optional*):
                Return a [`TWRVAEOutput`] (default) rather than a tuple.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                The reconstruction targets, as for a causal language model: `input_ids` itself, with `-100` where no
                loss is wanted (`DataCollatorForLanguageModeling(tokenizer, mlm=False)` makes them, -100 on
                padding); the model shifts them (position t predicts token t + 1). A VAE reconstructs its input, so
                every label that is not -100 must equal the input id at its position, and padding positions never
                count. Without `labels`, every real token after `<bos>` counts, which is the same loss.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute `loss`; with `False` it is `None` (the other losses are still returned).
            use_cache (`bool`, *optional*):
                With `latents`: return the decoder state as `cache` (default); `False` returns none.
            output_hidden_states (`bool`, *optional*):
                Return the decoder's top-layer outputs as `hidden_states` (see [`TWRVAEOutput`]).
            output_attentions (`bool`, *optional*):
                An RNN has no attention weights: only `None` or `False` are accepted.
            refine_steps (`int`, *optional*):
                SA-VAE: the number of refinement steps of the decoded latent's posterior (see
                `TWRVAEConfig.svi_steps`) before decoding, with `kl_weight` in the refined ELBO. Defaults to
                `config.svi_steps` in training mode and to 0 in evaluation mode, which keeps evaluation deterministic;
                pass `refine_steps=model.config.svi_steps` to evaluate an SA-VAE on its refined posterior, as its
                authors do. Gradients flow through the steps when gradients are enabled; under `torch.no_grad()` the
                steps still run (on detached copies). The refined posterior comes back as
                `refined_posterior_mean` / `refined_posterior_logvar`.
        """
        return_dict, output_hidden_states = forward_options(
            self, reduction, output_attentions, return_dict, output_hidden_states
        )
        if latents is not None:
            output = self._decode(
                input_ids,
                attention_mask,
                latents,
                cache,
                reduction,
                return_logits,
                labels=labels,
                return_loss=return_loss,
                use_cache=use_cache,
                output_hidden_states=output_hidden_states,
            )
            return output if return_dict else output.to_tuple()
        if cache is not None:
            raise ValueError("`cache` continues decoding from `latents`; pass the latents it was made with.")
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        lengths = self._check_inputs(input_ids, attention_mask)
        loss_mask = loss_mask_from_labels(input_ids, attention_mask, labels)
        sample_posterior = self.training if sample_posterior is None else sample_posterior

        posterior_mean, posterior_logvar = self.encoder(input_ids, lengths)
        # under autocast the posterior layers give bf16; the KL terms and the sampled latent want the model's own
        posterior_mean, posterior_logvar = posterior_mean.to(self.dtype), posterior_logvar.to(self.dtype)
        posterior, refined, latents = self._draw_latents(
            posterior_mean, posterior_logvar, lengths, sample_posterior, self._refinement_steps(refine_steps),
            input_ids, loss_mask, kl_weight,
        )  # fmt: skip
        # without logits, the last position (which predicts nothing) is not decoded at all
        decoded = input_ids if return_logits or input_ids.shape[1] < 2 else input_ids[:, :-1]
        top_layer, _ = self.decoder.hidden_states(decoded, latents)
        reconstruction, logits = self._reconstruction_loss(
            self.decoder.output_dropout(top_layer), input_ids, loss_mask, return_logits
        )
        if refined is not None:  # the regulariser is the decoded latent's KL (check_refinable), now of q_K
            kl_dimensions = refined.kl_per_dimension()
        else:
            kl_dimensions = self.timestep_kl_per_dimension(posterior_mean, posterior_logvar, lengths)
        losses = self._losses(
            reconstruction, kl_dimensions, posterior.kl(), kl_weight, free_bits, reduction, return_loss,
            bag_of_words_loss(self, latents, input_ids, loss_mask, reduction),
        )  # fmt: skip

        output = TWRVAEOutput(
            **losses,
            logits=logits,
            latents=latents,
            posterior_mean=posterior_mean,
            posterior_logvar=posterior_logvar,
            hidden_states=(top_layer,) if output_hidden_states else None,
            refined_posterior_mean=refined.mean if refined is not None else None,
            refined_posterior_logvar=refined.logvar if refined is not None else None,
        )
        return output if return_dict else output.to_tuple()

    def _draw_latents(
        self, posterior_mean, posterior_logvar, lengths, sample_posterior, refine_steps, input_ids, loss_mask, kl_weight
    ) -> tuple[DiagonalGaussianDistribution, DiagonalGaussianDistribution | None, torch.Tensor]:
        """q(z | x) of the decoded latent (SA-VAE's refined q_K after `refine_steps`, which comes back second too, or
        None) and the latent the decoder reads: a sample of it, or its mode."""
        posterior = self.posterior(posterior_mean, posterior_logvar, lengths)
        if refine_steps:
            refined = self.refine_posterior(posterior, input_ids, loss_mask, refine_steps, kl_weight)
            return refined, refined, refined.sample() if sample_posterior else refined.mode()
        if sample_posterior:
            return posterior, None, self.sample_latents(posterior_mean, posterior_logvar, lengths)
        return posterior, None, posterior.mode()

    def _losses(
        self, reconstruction, kl_dimensions, kl_decoded, kl_weight, free_bits, reduction, return_loss, bow_loss
    ) -> dict[str, torch.Tensor | None]:
        """The output's losses from per-sequence terms: `kl_dimensions` is the regulariser per sequence and latent
        dimension, which free bits clamp (averaged over the batch first) in `loss` only."""
        kl_regularizer = kl_dimensions.sum(dim=-1)
        if reduction == "mean":
            reconstruction, kl_regularizer, kl_decoded = reconstruction.mean(), kl_regularizer.mean(), kl_decoded.mean()
            kl_dimensions = kl_dimensions.mean(dim=0)
        kl_term = kl_dimensions.clamp(min=free_bits).sum(dim=-1) if free_bits > 0 else kl_regularizer
        return {
            "loss": (
                combined_loss(reconstruction, kl_weight, kl_term, bow_loss, self.config.bow_loss_weight)
                if return_loss
                else None
            ),
            "reconstruction_loss": reconstruction,
            "kl_regularizer": kl_regularizer,
            "kl_decoded": kl_decoded,
            "bow_loss": bow_loss,
        }

    def _refinement_steps(self, refine_steps: int | None) -> int:
        """How many SA-VAE steps this forward pass takes: `refine_steps`, else the config's in training, else 0."""
        if refine_steps is None:
            return self.config.svi_steps if self.training else 0
        if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
            raise ValueError(f"`refine_steps` must be an integer >= 0, got {refine_steps!r}.")
        if refine_steps:
            check_refinable(self.config)
        return refine_steps

    def refine_posterior(
        self,
        posterior: DiagonalGaussianDistribution,
        input_ids: torch.LongTensor,
        loss_mask: torch.Tensor,
        steps: int,
        kl_weight: float = 1.0,
    ) -> DiagonalGaussianDistribution:
        """SA-VAE: the decoded latent's posterior after `steps` gradient steps on each sentence's negative ELBO,
        -log p(x | z) (z ~ q, one noise draw and, in training, one set of dropout masks per step) + kl_weight * KL,
        with the configuration's `svi_*` settings (see `semi_amortized.refine_posterior`).

        Args:
            posterior: q_0(z | x), (batch, latent_size), as `posterior` gives it.
            input_ids: the right-padded sentences.
            loss_mask: the positions whose tokens count in the reconstruction (the real ones, less any that
                `labels` excludes).
        """
        config = self.config
        decoded = input_ids if input_ids.shape[1] < 2 else input_ids[:, :-1]  # the last position predicts nothing

        def negative_elbo(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
            step_posterior = DiagonalGaussianDistribution(mean, logvar)
            top_layer, _ = self.decoder.hidden_states(decoded, step_posterior.sample())
            features = self.decoder.output_dropout(top_layer)
            # the plain output layer: the steps are differentiated twice, which the fused loss does not allow
            reconstruction, _ = self._reconstruction_loss(features, input_ids, loss_mask, False, fused=False)
            return reconstruction + kl_weight * step_posterior.kl()

        mean, logvar = refine_gaussian_posterior(
            posterior.mean,
            posterior.logvar,
            negative_elbo,
            steps,
            learning_rate=config.svi_learning_rate,
            momentum=config.svi_momentum,
            max_grad_norm=config.svi_max_grad_norm,
            batch_size=config.svi_batch_size,
        )
        return DiagonalGaussianDistribution(mean, logvar)

    def _reconstruction_loss(
        self,
        features: torch.Tensor,
        input_ids: torch.LongTensor,
        loss_mask: torch.Tensor,
        return_logits: bool,
        fused: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-log p of every token after the first, summed per sequence over those of `loss_mask` (the real ones, less
        any that `labels` set to -100); and the logits if asked.

        The log-softmax reads one contiguous (num_predicted, vocab) matrix of the positions that predict a real
        token (no (batch, vocab, length) transpose, no copy of sliced logits); without `return_logits`, the output
        layer itself runs only on those rows, so padding and each sequence's last position cost nothing. With
        `fused=False` the output layer's loss stays twice differentiable (plain `lm_head` and cross-entropy rather
        than the fused, once-differentiable loss).
        """
        batch, length = features.shape[:2]  # length: the decoded positions, all of input_ids or all but the last
        if self.static_shapes and not return_logits:
            return self._reconstruction_loss_static(features, input_ids, loss_mask, fused), None
        rows, positions = loss_mask[:, 1:].bool().nonzero(as_tuple=True)
        targets = input_ids[rows, positions + 1]
        flat = rows * length + positions
        if return_logits:
            if fused:
                logits, token_nll = output_layer_logits_and_nll(
                    features.reshape(batch * length, -1), self.decoder.lm_head, flat, targets
                )
            else:
                logits = self.decoder.lm_head(features.reshape(batch * length, -1))
                token_nll = F.cross_entropy(at_least_fp32(logits.index_select(0, flat)), targets, reduction="none")
            logits = logits.view(batch, length, -1)
        else:
            logits = None
            selected = features.reshape(batch * length, -1).index_select(0, flat)
            token_nll = (
                output_layer_nll(selected, self.decoder.lm_head, targets)
                if fused
                else F.cross_entropy(at_least_fp32(self.decoder.lm_head(selected)), targets, reduction="none")
            )
        return token_nll.new_zeros(batch).index_add_(0, rows, token_nll), logits

    def _reconstruction_loss_static(
        self, features: torch.Tensor, input_ids: torch.LongTensor, loss_mask: torch.Tensor, fused: bool
    ) -> torch.Tensor:
        """`_reconstruction_loss` with shapes that depend on the batch's size and padded length only: every position
        goes through the output layer and the padding's -log p is multiplied by zero, so nothing is read back from
        the device (the selection of real rows, `nonzero`, is). Equal to it up to float rounding."""
        batch, length = features.shape[:2]
        targets = F.pad(input_ids[:, 1:], (0, 1))[:, :length]  # the position after the last predicts padding
        weights = F.pad(loss_mask[:, 1:], (0, 1))[:, :length].reshape(-1)
        flat = features.reshape(batch * length, -1)
        token_nll = (
            output_layer_nll(flat, self.decoder.lm_head, targets.reshape(-1))
            if fused
            else F.cross_entropy(at_least_fp32(self.decoder.lm_head(flat)), targets.reshape(-1), reduction="none")
        )
        return (token_nll * weights.to(token_nll.dtype)).view(batch, length).sum(1)

    def _decode(
        self,
        input_ids,
        attention_mask,
        latents,
        cache,
        reduction,
        return_logits=True,
        labels=None,
        return_loss=True,
        use_cache=None,
        output_hidden_states=False,
    ) -> TWRVAEOutput:
        if latents.dim() != 2 or latents.shape != (input_ids.shape[0], self.config.latent_size):
            raise ValueError(
                f"`latents` must have shape (batch_size={input_ids.shape[0]}, latent_size={self.config.latent_size}), "
                f"got {tuple(latents.shape)}."
            )
        use_cache = True if use_cache is None else use_cache
        if cache is not None:  # generate()'s later steps: the latents were checked at its first
            if labels is not None:
                raise ValueError("`labels` with `cache`: a continued decoding step computes no loss; drop `labels`.")
            top_layer, state = self.decoder.hidden_states(input_ids, latents.to(self.dtype), cache.state)
            logits = self.decoder.lm_head(self.decoder.output_dropout(top_layer)) if return_logits else None
            return TWRVAEOutput(
                logits=logits,
                latents=latents,
                cache=TWRVAEDecoderCache(state, cache.seen_tokens + input_ids.shape[1]) if use_cache else None,
                hidden_states=(top_layer,) if output_hidden_states else None,
            )
        latents = check_latents(latents, self.dtype)
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        self._check_inputs(input_ids, attention_mask)
        loss_mask = loss_mask_from_labels(input_ids, attention_mask, labels)
        top_layer, state = self.decoder.hidden_states(input_ids, latents)
        features = self.decoder.output_dropout(top_layer)
        reconstruction, logits = self._reconstruction_loss(features, input_ids, loss_mask, return_logits)
        if reduction == "mean":
            reconstruction = reconstruction.mean()
        return TWRVAEOutput(
            loss=reconstruction if return_loss else None,
            reconstruction_loss=reconstruction,
            logits=logits,
            latents=latents,
            cache=TWRVAEDecoderCache(state, input_ids.shape[1]) if use_cache else None,
            hidden_states=(top_layer,) if output_hidden_states else None,
        )


def _aggregate_posterior_to_save(model):
    """The model's mixture if it still belongs to its weights; None (and the config says none) otherwise."""
    mixture = getattr(model, "aggregate_posterior", None)
    if mixture is None:
        if getattr(model.config, "aggregate_posterior", None) is not None:
            model.config.aggregate_posterior = None
        return None
    if getattr(model, "_aggregate_posterior_weights", None) != parameters_digest(model):
        warnings.warn(
            f"The aggregate-posterior mixture was fitted to other weights (they changed since): {AGGREGATE_POSTERIOR_FILE} "
            "is not saved. Fit it again with `model.fit_aggregate_posterior(training_texts, tokenizer)`.",
            stacklevel=3,
        )
        model.set_aggregate_posterior(None)
        return None
    model.config.aggregate_posterior = {"file": AGGREGATE_POSTERIOR_FILE, **mixture.settings}
    return mixture


def _load_aggregate_posterior(model, name_or_path, kwargs: dict) -> None:
    """Attach the folder's aggregate-posterior mixture when it belongs to the weights loaded; otherwise warn, naming
    the file, and leave the model without one (`sample(sampler="aggregate")` then says why)."""
    from transformers.utils import cached_file

    options = {
        key: kwargs[key]
        for key in ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
        if key in kwargs
    }
    path = cached_file(
        str(name_or_path),
        AGGREGATE_POSTERIOR_FILE,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **options,
    )
    mixture = None
    if path is None:
        refused = f"config.json describes an aggregate-posterior mixture, but {AGGREGATE_POSTERIOR_FILE} is missing."
    else:
        try:
            mixture, fitted_to = load_mixture(path)
        except Exception as error:  # a torn or foreign file: the weights themselves are still usable
            refused = f"{path} could not be read ({type(error).__name__}: {error}): it is not loaded."
    if mixture is not None:
        loaded = weights_fingerprint(Path(path).parent)
        if mixture.dim != model.config.latent_size:
            refused = (
                f"{path} is a mixture over {mixture.dim} dimensions, but the model's latent has "
                f"{model.config.latent_size}: it was not fitted to this model."
            )
        elif fitted_to is None or fitted_to != loaded:
            refused = (
                f"{path} was fitted to other weights (sha256 {str(fitted_to)[:12]}, these are {str(loaded)[:12]}): "
                "it is not loaded."
            )
        else:
            model.set_aggregate_posterior(mixture)
            return
    warnings.warn(
        refused + " Fit a new one with `model.fit_aggregate_posterior(training_texts, tokenizer)`.", stacklevel=3
    )
    model.set_aggregate_posterior(None)
    model._aggregate_posterior_refused = refused


def _load_attribute_vectors(model, name_or_path, kwargs: dict) -> None:
    """Attach the folder's named attribute vectors when they were made with the weights loaded; warn otherwise."""
    from transformers.utils import cached_file

    options = {
        key: kwargs[key] for key in ("cache_dir", "token", "revision", "local_files_only", "subfolder") if key in kwargs
    }
    path = cached_file(
        str(name_or_path),
        ATTRIBUTE_VECTORS_FILE,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **options,
    )
    if path is None:
        return
    try:
        vectors, made_with = load_attribute_vectors(path)
    except Exception as error:  # a torn or foreign file: the weights themselves are still usable
        warnings.warn(f"{path} could not be read ({type(error).__name__}: {error}): it is not loaded.", stacklevel=3)
        return
    loaded = weights_fingerprint(Path(path).parent)
    if made_with is None or made_with != loaded:
        warnings.warn(
            f"{path} was made with other weights (sha256 {str(made_with)[:12]}, these are {str(loaded)[:12]}): it "
            "is not loaded.",
            stacklevel=3,
        )
        return
    for name, vector in vectors.items():
        model.add_attribute_vector(name, vector)


def _remove_stale_shards(folder: Path, written: set[str]) -> None:
    """A save that is not sharded leaves no index of an earlier sharded save behind (loading would prefer it)."""
    index = folder / "model.safetensors.index.json"
    if index.name in written or not index.is_file():
        return
    for name in set(json.loads(index.read_text()).get("weight_map", {}).values()) - written:
        (folder / name).unlink(missing_ok=True)
    index.unlink()


def check_batch(batch: dict, vocab_size: int) -> dict:
    """What `forward` checks of `input_ids` and `attention_mask`, on a batch still on the host: a loop that checks
    here sets `model.inputs_checked_by_caller` so that the step on the device reads nothing back."""
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    if input_ids.dim() != 2 or 0 in input_ids.shape:
        raise ValueError(
            f"`input_ids` must be a non-empty (batch_size, sequence_length) batch, got {tuple(input_ids.shape)}."
        )
    check_token_ids(input_ids, vocab_size, "input_ids")
    right_padded_lengths(input_ids, attention_mask, "sequence")
    return batch


def check_token_ids(ids: torch.LongTensor, vocab_size: int, name: str) -> None:
    """`ValueError` for ids outside the vocabulary: the sign of a tokenizer that does not match the model."""
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"`{name}` holds ids outside [0, vocab_size={vocab_size}) (max {int(ids.max())}): the tokenizer does not "
            "match this model. Use the tokenizer saved with the model."
        )


def loss_mask_from_labels(
    input_ids: torch.LongTensor, attention_mask: torch.Tensor, labels: torch.LongTensor | None
) -> torch.Tensor:
    """The positions whose token counts in the reconstruction loss: the real ones, less those `labels` sets to -100.

    A VAE reconstructs its input, so `labels` (as a causal language model takes them: `input_ids` with -100 where no
    loss is wanted) must equal `input_ids` wherever it is not -100; padding positions never count.
    """
    if labels is None:
        return attention_mask
    if not isinstance(labels, torch.Tensor) or labels.shape != input_ids.shape:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"`labels` must have the shape of `input_ids` {tuple(input_ids.shape)}, got {shape}.")
    if torch.is_floating_point(labels) or labels.dtype == torch.bool:
        raise ValueError(f"`labels` must hold token ids (an integer tensor), got {labels.dtype}.")
    labels = labels.to(input_ids.device)
    counted = attention_mask.bool() & (labels != IGNORE_INDEX)
    differs = counted & (labels != input_ids)
    if differs.any():
        row, position = (int(index) for index in differs.nonzero()[0])
        raise ValueError(
            f"`labels` differs from `input_ids` at row {row}, position {position} ({int(labels[row, position])} vs "
            f"{int(input_ids[row, position])}): a VAE reconstructs its input, so `labels` is `input_ids` with -100 "
            "where no loss is wanted (DataCollatorForLanguageModeling(tokenizer, mlm=False) makes it)."
        )
    return counted


def forward_options(model, reduction: str, output_attentions, return_dict, output_hidden_states) -> tuple[bool, bool]:
    """The checks and defaults every forward pass of the package starts with: `(return_dict, output_hidden_states)`."""
    if reduction not in ("mean", "none"):
        raise ValueError(f"`reduction` must be 'mean' or 'none', got {reduction!r}.")
    check_no_attentions(model, output_attentions)
    return_dict = return_dict if return_dict is not None else model.config.return_dict
    if output_hidden_states is None:
        output_hidden_states = bool(getattr(model.config, "output_hidden_states", False))
    return return_dict, output_hidden_states


def combined_loss(reconstruction, kl_weight, kl_term, bow_loss=None, bow_loss_weight: float = 0.0) -> torch.Tensor:
    """The objective: reconstruction + kl_weight * KL term (+ the weighted bag-of-words loss when there is one)."""
    loss = reconstruction + kl_weight * kl_term
    return loss if bow_loss is None else loss + bow_loss_weight * bow_loss


def check_no_attentions(model, output_attentions) -> None:
    if output_attentions:
        raise ValueError(
            f"{type(model).__name__} is a recurrent model and has no attention weights: `output_attentions` must be "
            "False or None."
        )


def right_padded_lengths(input_ids: torch.LongTensor, attention_mask: torch.Tensor, item: str) -> torch.LongTensor:
    """Each row's number of real tokens; `ValueError` for a mask of another shape, an empty row or left padding."""
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"`attention_mask` {tuple(attention_mask.shape)} must have the shape of `input_ids` "
            f"{tuple(input_ids.shape)}."
        )
    lengths = attention_mask.long().sum(dim=1)
    if (lengths < 1).any():
        raise ValueError(f"Every {item} needs at least one real token; remove empty {item}s from the batch.")
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    if not torch.equal(attention_mask.bool(), positions < lengths[:, None]):
        raise ValueError(
            "`attention_mask` must be right-padded (ones, then zeros): set `tokenizer.padding_side = 'right'`."
        )
    return lengths


def _sequence_nll(logits: torch.Tensor, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """-log p of every token after the first, summed per sequence over the real ones, from the logits of every
    position (fp32 log-softmax of only the rows that predict a real token)."""
    rows, positions = attention_mask[:, 1:].bool().nonzero(as_tuple=True)
    token_nll = F.cross_entropy(
        at_least_fp32(logits[rows, positions]), input_ids[rows, positions + 1], reduction="none"
    )
    return token_nll.new_zeros(logits.shape[0]).index_add_(0, rows, token_nll)


def _length_mask(lengths: torch.LongTensor, max_length: int) -> torch.Tensor:
    return torch.arange(max_length, device=lengths.device) < lengths[:, None]


__all__ = ["TWRVAEModel", "TWRVAEPreTrainedModel", "TWRVAEOutput", "TWRVAEEncoder", "TWRVAEDecoder"]
