"""The conditional TWR-VAE for dialogue response generation (TWR-VAE paper section 4.2; the CVAE of Zhao et al. 2017).

A bidirectional GRU encodes each utterance; a GRU context encoder reads the last J utterances, each encoding beside
a one-hot of who speaks, and gives c_1..c_J. At every context step j a recognition network gives q(z_j | x, c_j)
(x the encoded response) and a prior network p(z_j | c_j). The decoder, a GRU started from [z_J; c_J], writes the
response. The regulariser is (1/J) sum_j KL(q(z_j | x, c_j) || p(z_j | c_j)) (`twr-cvae`) or the last step's KL only
(`cvae`). J is each dialogue's own number of context utterances, so a dialogue gets the same loss in a mixed batch
as alone.

Inputs: the response as `input_ids` / `attention_mask` (right-padded `<bos> ... <eos>`), and the context as
`context_input_ids` / `context_attention_mask` of shape (batch, J, length), oldest utterance first, real utterances
before padding utterances (all zeros in the mask), with `context_speakers` (batch, J): 1 where the utterance is the
responder's own, 0 where it is the other speaker's (the floor feature of Zhao et al.).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_twrcvae import TWRCVAEConfig
from .distributions import DiagonalGaussianDistribution
from .dropout import Dropout
from .generation_twrvae import RecurrentDecoderGenerationMixin, TWRVAEDecoderCache, decode_text
from .modeling_twrvae import (
    DEFAULT_MAX_LENGTH,
    TWRVAEPreTrainedModel,
    _sequence_nll,
    check_token_ids,
    combined_loss,
    forward_options,
    loss_mask_from_labels,
    reject_unknown_keywords,
    right_padded_lengths,
)
from .output_layer_nll import bag_of_words_loss
from .recurrence import run_rnn


@dataclass
class TWRCVAEOutput(ModelOutput):
    r"""
    Output of [`TWRCVAEModel.forward`]. Losses are sums over each response's tokens, averaged over the batch; with
    `reduction="none"` they are one value per dialogue.

    loss (`torch.FloatTensor`):
        `reconstruction_loss + kl_weight * kl_regularizer + bow_loss_weight * bow_loss`, what training minimises.
    reconstruction_loss (`torch.FloatTensor`):
        -log p(x | z, c) of the response's predicted tokens (every token after `<bos>`, `<eos>` included).
    kl_regularizer (`torch.FloatTensor`):
        The optimised KL term: KL(q(z_j | x, c_j) || p(z_j | c_j)) averaged over each dialogue's context steps
        (`twr-cvae`), or at its last step (`cvae`).
    kl_decoded (`torch.FloatTensor`):
        KL(q(z_J | x, c_J) || p(z_J | c_J)) of the latent the decoder read; the honest ELBO is
        `-(reconstruction_loss + kl_decoded)`.
    bow_loss (`torch.FloatTensor`):
        The bag-of-words loss of Zhao et al. (-log of every response word under one softmax from [z; c]); `None`
        when `bow_loss_weight` is 0.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Decoder scores; position t predicts token t + 1.
    latents (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        The z the decoder read.
    context_vector (`torch.FloatTensor` of shape `(batch_size, context_hidden_size)`):
        c_J, the context encoder's state after each dialogue's last context utterance.
    posterior_mean, posterior_logvar, prior_mean, prior_logvar (`torch.FloatTensor` of shape `(batch_size, J, latent_size)`):
        q(z_j | x, c_j) and p(z_j | c_j) at every context step (values at padding steps are meaningless).
    cache (`TWRVAEDecoderCache`):
        With `latents` given: the decoder's GRU state after the last input position, which continues decoding.
    hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
        One tensor of shape `(batch_size, sequence_length, decoder_hidden_size)`: the decoder GRU's output at every
        position, what `lm_head` reads.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    kl_regularizer: torch.FloatTensor | None = None
    kl_decoded: torch.FloatTensor | None = None
    bow_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    context_vector: torch.FloatTensor | None = None
    posterior_mean: torch.FloatTensor | None = None
    posterior_logvar: torch.FloatTensor | None = None
    prior_mean: torch.FloatTensor | None = None
    prior_logvar: torch.FloatTensor | None = None
    cache: TWRVAEDecoderCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class TWRCVAEPreTrainedModel(TWRVAEPreTrainedModel):
    config: TWRCVAEConfig
    config_class = TWRCVAEConfig
    base_model_prefix = "twrcvae"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_latent_network", False):  # recognition and prior layers (TWR-VAE appendix F)
            bound = self.config.latent_initializer_range
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)
        else:
            super()._init_weights(module)


def _latent_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    layer._latent_network = True
    return layer


class DialogueEncoderMixin:
    """The dialogue models' encoders (Zhao et al., 2017): a bidirectional GRU per utterance, and a GRU over the
    context's utterance encodings, each beside a one-hot of who speaks. The model provides `embed_tokens`, `dropout`
    (on the word embeddings), `context_dropout`, `utterance_encoder`, `context_encoder`, and a config with
    `utterance_encoding_size`, `context_window`, `num_floors`, `pad_token_id` and `vocab_size`."""

    def encode_utterances(self, input_ids: torch.LongTensor, lengths: torch.LongTensor) -> torch.Tensor:
        """(N, 2 * utterance_hidden_size): both directions' last states over each utterance's own real tokens."""
        embeddings = self.dropout(self.embed_tokens(input_ids))
        packed = pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.utterance_encoder(packed)
        return torch.cat([final[0], final[1]], dim=-1)

    def encode_context(
        self,
        context_input_ids: torch.LongTensor,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """The context encoder's states c_1..c_J (batch, J, context_hidden_size) and each dialogue's J."""
        config = self.config
        if context_input_ids.dim() != 3:
            raise ValueError(
                "`context_input_ids` must have shape (batch_size, num_utterances, utterance_length), got "
                f"{tuple(context_input_ids.shape)}."
            )
        batch, window, _ = context_input_ids.shape
        if window > config.context_window:
            raise ValueError(
                f"The context has {window} utterances but the model reads at most context_window="
                f"{config.context_window}: keep each dialogue's last {config.context_window} (prepare_contexts does)."
            )
        if context_attention_mask is None:
            context_attention_mask = context_input_ids != config.pad_token_id
        if context_attention_mask.shape != context_input_ids.shape:
            raise ValueError(
                f"`context_attention_mask` {tuple(context_attention_mask.shape)} must have the shape of "
                f"`context_input_ids` {tuple(context_input_ids.shape)}."
            )
        check_token_ids(context_input_ids, config.vocab_size, "context_input_ids")
        mask = context_attention_mask.bool()
        utterance_lengths = mask.sum(-1)
        positions = torch.arange(mask.shape[-1], device=mask.device)
        if not torch.equal(mask, positions < utterance_lengths[..., None]):
            raise ValueError("Every context utterance must be right-padded (ones, then zeros in the mask).")
        real = utterance_lengths > 0
        counts = real.sum(-1)
        if (counts < 1).any():
            raise ValueError("Every dialogue needs at least one context utterance; remove responses without context.")
        if not torch.equal(real, torch.arange(window, device=mask.device) < counts[:, None]):
            raise ValueError(
                "Context utterances must come first and padding utterances after them (oldest utterance first)."
            )
        if context_speakers is None:
            context_speakers = (counts[:, None] - 1 - torch.arange(window, device=mask.device)).remainder(2)
        if context_speakers.shape != (batch, window):
            raise ValueError(
                f"`context_speakers` must have shape (batch_size, num_utterances) = {(batch, window)}, got "
                f"{tuple(context_speakers.shape)}."
            )
        if ((context_speakers < 0) | (context_speakers >= config.num_floors))[real].any():
            raise ValueError(f"`context_speakers` must hold floors in [0, num_floors={config.num_floors}).")

        encodings = context_input_ids.new_zeros(
            (batch, window, config.utterance_encoding_size), dtype=self.embed_tokens.weight.dtype
        )
        encodings[real] = self.encode_utterances(context_input_ids[real], utterance_lengths[real])
        floors = F.one_hot(context_speakers.clamp(0, config.num_floors - 1), config.num_floors).to(encodings.dtype)
        floors = floors * real.unsqueeze(-1).to(encodings.dtype)
        # Padding utterances come after each dialogue's last real one, so they never reach c_1..c_J.
        states, _ = self.context_encoder(self.context_dropout(torch.cat([encodings, floors], dim=-1)))
        return states, counts

    def prepare_contexts(
        self,
        contexts: Sequence[Sequence[str]],
        tokenizer,
        speakers: Sequence[Sequence[int]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tensors for `generate` from text: each context's last `context_window` turns, tokenised and padded.

        `speakers` gives each turn's floor (1: the responder's own turn, 0: the other speaker's); by default the
        speakers alternate and the last turn is the other speaker's.
        """
        window = self.config.context_window
        features = []
        for index, turns in enumerate(contexts):
            turns = [turn for turn in turns][-window:]
            if not turns:
                raise ValueError(f"Context {index} has no turns: a response needs at least one context utterance.")
            if speakers is None:
                floors = [(len(turns) - 1 - j) % 2 for j in range(len(turns))]
            else:
                floors = list(speakers[index])[-window:]
                if len(floors) != len(turns):
                    raise ValueError(f"Context {index} has {len(turns)} turns but {len(floors)} speakers.")
            features.append({"context_input_ids": tokenizer(turns)["input_ids"], "context_speakers": floors})
        return {key: value.to(self.device) for key, value in pad_contexts(features, self.config.pad_token_id).items()}


class TWRCVAEGenerationMixin(RecurrentDecoderGenerationMixin):
    """Responses from the prior p(z | c): transformers' `generate` with the context as input, and `respond` for text."""

    @torch.no_grad()
    def prior_distribution(
        self,
        context_input_ids: torch.LongTensor,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
    ) -> tuple[DiagonalGaussianDistribution, torch.Tensor]:
        """p(z_J | c_J) for each dialogue's last context step, and c_J itself."""
        context_states, counts = self.encode_context(context_input_ids, context_attention_mask, context_speakers)
        context_vector = _last_step(context_states, counts)
        return self._prior(context_vector), context_vector

    def generate(
        self,
        inputs=None,
        generation_config=None,
        context_input_ids: torch.LongTensor | None = None,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
        latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ):
        """transformers' `generate`, writing responses to the given contexts; every decoding option works.

        Without `latents`, each of the `num_return_sequences` responses of a context decodes its own sample of the
        prior p(z | c) (drawn with `generator`), so greedy decoding (the papers' setting) gives different responses;
        the output holds a context's responses together, `num_return_sequences` rows per context. With `latents`
        (batch_size, latent_size), those are decoded and each gives `num_return_sequences` outputs, as in the
        language model.
        """
        if context_input_ids is None:
            raise ValueError(
                "generate() writes a response to a context: pass `context_input_ids` (batch, J, length) with "
                "`context_attention_mask` and `context_speakers`, as `TWRCVAEModel.prepare_contexts` makes them."
            )
        prior, context_vector = self.prior_distribution(context_input_ids, context_attention_mask, context_speakers)
        count = kwargs.pop("num_return_sequences", None)
        if count is None:
            count = (generation_config or self.generation_config).num_return_sequences or 1
        if latents is None:
            latents = DiagonalGaussianDistribution(
                prior.mean.repeat_interleave(count, dim=0), prior.logvar.repeat_interleave(count, dim=0)
            ).sample(generator=generator)
            context_vector = context_vector.repeat_interleave(count, dim=0)
            if inputs is not None:
                inputs = inputs.repeat_interleave(count, dim=0)
            count = 1
        elif latents.shape != (context_vector.shape[0], self.config.latent_size):
            raise ValueError(
                f"`latents` must have shape (batch_size={context_vector.shape[0]}, "
                f"latent_size={self.config.latent_size}), got {tuple(latents.shape)}."
            )
        latents = latents.to(device=self.device, dtype=self.dtype)
        if generation_config is not None:
            # in (a copy of) the caller's config: beside it as a keyword, transformers would warn that passing both
            # is deprecated
            generation_config = copy.deepcopy(generation_config)
            generation_config.num_return_sequences = count
        else:
            kwargs["num_return_sequences"] = count
        return self._generate_conditioned(
            inputs, generation_config, latents=latents, context_vector=context_vector, **kwargs
        )

    def respond(
        self,
        context_turns: Sequence[str],
        tokenizer,
        num_return_sequences: int = 10,
        speakers: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        **generate_kwargs,
    ) -> list[str]:
        """`num_return_sequences` responses to one dialogue's turns (oldest first), each from its own prior sample,
        decoded greedily unless `generate_kwargs` say otherwise."""
        if isinstance(context_turns, str):
            raise ValueError("`context_turns` is a list of turns (strings), oldest first, not one string.")
        batch = self.prepare_contexts([context_turns], tokenizer, None if speakers is None else [speakers])
        sequences = self.generate(
            **batch, num_return_sequences=num_return_sequences, generator=generator, **generate_kwargs
        )
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        return decode_text(tokenizer, sequences, self.config)


class TWRCVAEModel(TWRCVAEPreTrainedModel, DialogueEncoderMixin, TWRCVAEGenerationMixin):
    """The conditional TWR-VAE (`twr-cvae`) and the CVAE of Zhao et al. (`cvae`) for dialogue responses."""

    def __init__(self, config: TWRCVAEConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)  # shared: encoder and decoder
        self.dropout = Dropout(config.dropout)
        self.context_dropout = Dropout(config.context_dropout)
        self.utterance_encoder = nn.GRU(
            config.embedding_size, config.utterance_hidden_size, batch_first=True, bidirectional=True
        )
        self.context_encoder = nn.GRU(
            config.utterance_encoding_size + config.num_floors, config.context_hidden_size, batch_first=True
        )
        # q(z | x, c): one linear layer giving [mu; logvar]; p(z | c): linear + tanh, then linear to [mu; logvar].
        self.recognition = _latent_linear(
            config.utterance_encoding_size + config.context_hidden_size, 2 * config.latent_size
        )
        self.prior_hidden = _latent_linear(config.context_hidden_size, config.prior_hidden_size)
        self.prior_output = _latent_linear(config.prior_hidden_size, 2 * config.latent_size)
        self.decoder_init = nn.Linear(config.condition_size, config.decoder_hidden_size)
        self.decoder = nn.GRU(config.embedding_size, config.decoder_hidden_size, batch_first=True)
        self.lm_head = nn.Linear(config.decoder_hidden_size, config.vocab_size)
        if config.bow_loss_weight > 0:
            self.bow_head = nn.Sequential(
                nn.Linear(config.condition_size, config.bow_hidden_size),
                nn.Tanh(),
                nn.Linear(config.bow_hidden_size, config.vocab_size),
            )
        self.post_init()
        if self.generation_config.max_length is None:
            self.generation_config.max_length = DEFAULT_MAX_LENGTH

    def get_input_embeddings(self) -> nn.Embedding:
        """The word embedding, shared by the utterance encoder and the decoder."""
        return self.embed_tokens

    def _input_embeddings_owner(self) -> tuple[nn.Module, str]:
        return self, "embed_tokens"

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def _vocabulary_embeddings(self) -> list[nn.Embedding]:
        return [self.embed_tokens]

    def _vocabulary_outputs(self) -> list[tuple[nn.Module, str]]:
        outputs = [(self, "lm_head")]
        if hasattr(self, "bow_head"):
            outputs.append((self.bow_head, "2"))  # its last layer predicts every word (Zhao et al.)
        return outputs

    def _prior(self, context_states: torch.Tensor) -> DiagonalGaussianDistribution:
        mean, logvar = self.prior_output(torch.tanh(self.prior_hidden(context_states))).chunk(2, dim=-1)
        return DiagonalGaussianDistribution(mean, logvar)

    def _recognition(self, response_encoding: torch.Tensor, context_states: torch.Tensor):
        response = response_encoding.unsqueeze(1).expand(-1, context_states.shape[1], -1)
        mean, logvar = self.recognition(torch.cat([response, context_states], dim=-1)).chunk(2, dim=-1)
        return DiagonalGaussianDistribution(mean, logvar)

    # ----- decoder -----

    def _decoder_input_ids(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        config = self.config
        if self.training and config.word_dropout > 0:
            drop = torch.rand(input_ids.shape, device=input_ids.device) < config.word_dropout
            drop &= (input_ids != config.bos_token_id) & (input_ids != config.pad_token_id)
            return input_ids.masked_fill(drop, config.unk_token_id)
        return input_ids

    def decoder_outputs(
        self, input_ids: torch.LongTensor, condition: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder GRU's output at every position (what `lm_head` reads) and its state after the last, from
        [z; c] (or from `state`)."""
        if state is None:
            state = self.decoder_init(condition).unsqueeze(0)
        embeddings = self.dropout(self.embed_tokens(self._decoder_input_ids(input_ids)))
        return run_rnn(self.decoder, embeddings, state.contiguous())

    def decode(
        self, input_ids: torch.LongTensor, condition: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at every position and the GRU state after the last, from [z; c] (or from `state`)."""
        output, state = self.decoder_outputs(input_ids, condition, state)
        return self.lm_head(output), state

    @reject_unknown_keywords
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        context_input_ids: torch.LongTensor | None = None,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
        latents: torch.Tensor | None = None,
        context_vector: torch.Tensor | None = None,
        cache: TWRVAEDecoderCache | None = None,
        kl_weight: float = 1.0,
        sample_posterior: bool | None = None,
        reduction: str = "mean",
        return_dict: bool | None = None,
        *,
        return_logits: bool = True,
        labels: torch.LongTensor | None = None,
        return_loss: bool = True,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> TWRCVAEOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                The response, right-padded, `<bos> w_1 .. w_n <eos>` as the tokenizer makes it.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for the response's real tokens. Defaults to every token that is not `<pad>`.
            context_input_ids (`torch.LongTensor` of shape `(batch_size, num_utterances, utterance_length)`):
                The context's utterances, oldest first, each right-padded; dialogues with fewer utterances end
                with padding utterances. At most `context_window` utterances.
            context_attention_mask (`torch.Tensor`, *optional*):
                1 for real tokens of `context_input_ids`. Defaults to every token that is not `<pad>`.
            context_speakers (`torch.LongTensor` of shape `(batch_size, num_utterances)`, *optional*):
                Each utterance's floor: 1 for the responder's own, 0 for the other speaker's. Defaults to
                alternating speakers with the last utterance the other speaker's.
            latents (`torch.Tensor` of shape `(batch_size, latent_size)`, *optional*):
                Skip the recognition network and decode teacher-forced from this z (what `generate` runs); `loss` is
                then -log p(x | z, c).
            context_vector (`torch.Tensor` of shape `(batch_size, context_hidden_size)`, *optional*):
                With `latents`: c_J, computed already (by `generate`); else it is computed from the context.
            cache (`TWRVAEDecoderCache`, *optional*):
                With `latents`: the decoder state after the tokens read so far; `input_ids` holds only new tokens.
            kl_weight (`float`, *optional*, defaults to 1.0):
                Weight of the KL regulariser in `loss`.
            sample_posterior (`bool`, *optional*):
                Decode from a sample of q(z_J | x, c_J) or its mean; defaults to sampling in training mode only.
            reduction (`str`, *optional*, defaults to `"mean"`):
                `"mean"` averages the losses over the batch; `"none"` gives one value per dialogue.
            return_dict (`bool`, *optional*):
                Return a [`TWRCVAEOutput`] (default) rather than a tuple.
            return_logits (`bool`, *optional*, defaults to `True`):
                Return the decoder's scores in `logits`; with `False`, `logits` is `None` (the losses are the same).
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                The response's reconstruction targets, as for a causal language model: `input_ids` with -100 where
                no loss is wanted (padding never counts); every other label must equal the input id at its position.
                The bag-of-words loss counts the same tokens.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute `loss`; with `False` it is `None` (the other losses are still returned).
            use_cache (`bool`, *optional*):
                With `latents`: return the decoder state as `cache` (default); `False` returns none.
            output_hidden_states (`bool`, *optional*):
                Return the decoder GRU's outputs as `hidden_states`.
            output_attentions (`bool`, *optional*):
                A GRU has no attention weights: only `None` or `False` are accepted.
        """
        config = self.config
        return_dict, output_hidden_states = forward_options(
            self, reduction, output_attentions, return_dict, output_hidden_states
        )
        check_token_ids(input_ids, config.vocab_size, "input_ids")
        if latents is not None:
            output = self._decode_from(
                input_ids,
                attention_mask,
                latents,
                context_vector,
                cache,
                reduction,
                context_input_ids,
                context_attention_mask,
                context_speakers,
                return_logits=return_logits,
                labels=labels,
                return_loss=return_loss,
                use_cache=use_cache,
                output_hidden_states=output_hidden_states,
            )
            return output if return_dict else output.to_tuple()
        if cache is not None:
            raise ValueError("`cache` continues decoding from `latents`; pass the latents it was made with.")
        if context_input_ids is None:
            raise ValueError("The dialogue model needs the context: pass `context_input_ids` (batch, J, length).")
        attention_mask = self._response_mask(input_ids, attention_mask)
        loss_mask = loss_mask_from_labels(input_ids, attention_mask, labels)
        sample_posterior = self.training if sample_posterior is None else sample_posterior

        context_states, counts = self.encode_context(context_input_ids, context_attention_mask, context_speakers)
        posterior = self._recognition(self.encode_utterances(input_ids, attention_mask.sum(1)), context_states)
        prior = self._prior(context_states)
        kl_regularizer, kl_last = self._kl_terms(posterior, prior, counts)

        decoded = DiagonalGaussianDistribution(_last_step(posterior.mean, counts), _last_step(posterior.logvar, counts))
        latents = decoded.sample() if sample_posterior else decoded.mode()
        context_vector = _last_step(context_states, counts)
        condition = torch.cat([latents, context_vector], dim=-1)
        decoder_output, _ = self.decoder_outputs(input_ids, condition)
        logits = self.lm_head(decoder_output)
        reconstruction = _sequence_nll(logits, input_ids, loss_mask)
        bow_loss = bag_of_words_loss(self, condition, input_ids, loss_mask, reduction)
        if reduction == "mean":
            reconstruction, kl_regularizer, kl_last = reconstruction.mean(), kl_regularizer.mean(), kl_last.mean()
        loss = (
            combined_loss(reconstruction, kl_weight, kl_regularizer, bow_loss, config.bow_loss_weight)
            if return_loss
            else None
        )
        output = TWRCVAEOutput(
            loss=loss,
            reconstruction_loss=reconstruction,
            kl_regularizer=kl_regularizer,
            kl_decoded=kl_last,
            bow_loss=bow_loss,
            logits=logits if return_logits else None,
            latents=latents,
            context_vector=context_vector,
            posterior_mean=posterior.mean,
            posterior_logvar=posterior.logvar,
            prior_mean=prior.mean,
            prior_logvar=prior.logvar,
            hidden_states=(decoder_output,) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()

    def _kl_terms(
        self, posterior: DiagonalGaussianDistribution, prior: DiagonalGaussianDistribution, counts: torch.LongTensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per dialogue: the regulariser (KL(q || p) averaged over the context's utterances, or the last one's with
        `kl_regularizer="last"`) and the KL of the decoded latent, the last utterance's."""
        step_kl = posterior.kl(prior)  # (batch, J)
        kl_last = _last_step(step_kl.unsqueeze(-1), counts).squeeze(-1)
        if self.config.kl_regularizer != "timestep_wise":
            return kl_last, kl_last
        valid = (torch.arange(step_kl.shape[1], device=step_kl.device) < counts[:, None]).to(step_kl.dtype)
        return (step_kl * valid).sum(1) / counts.to(step_kl.dtype), kl_last

    def _response_mask(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(
                f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}."
            )
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        right_padded_lengths(input_ids, attention_mask, "response")
        return attention_mask

    def _decode_from(
        self,
        input_ids,
        attention_mask,
        latents,
        context_vector,
        cache,
        reduction,
        context_input_ids,
        context_attention_mask,
        context_speakers,
        return_logits=True,
        labels=None,
        return_loss=True,
        use_cache=None,
        output_hidden_states=False,
    ) -> TWRCVAEOutput:
        if latents.shape != (input_ids.shape[0], self.config.latent_size):
            raise ValueError(
                f"`latents` must have shape (batch_size={input_ids.shape[0]}, latent_size={self.config.latent_size}), "
                f"got {tuple(latents.shape)}."
            )
        if context_vector is None:
            if context_input_ids is None:
                raise ValueError("Decoding needs the context: pass `context_input_ids` or `context_vector`.")
            states, counts = self.encode_context(context_input_ids, context_attention_mask, context_speakers)
            context_vector = _last_step(states, counts)
        condition = torch.cat([latents, context_vector.to(latents.dtype)], dim=-1)
        use_cache = True if use_cache is None else use_cache
        if cache is not None:
            if labels is not None:
                raise ValueError("`labels` with `cache`: a continued decoding step computes no loss; drop `labels`.")
            decoder_output, state = self.decoder_outputs(input_ids, condition, cache.state)
            return TWRCVAEOutput(
                logits=self.lm_head(decoder_output) if return_logits else None,
                latents=latents,
                context_vector=context_vector,
                cache=TWRVAEDecoderCache(state, cache.seen_tokens + input_ids.shape[1]) if use_cache else None,
                hidden_states=(decoder_output,) if output_hidden_states else None,
            )
        attention_mask = self._response_mask(input_ids, attention_mask)
        loss_mask = loss_mask_from_labels(input_ids, attention_mask, labels)
        decoder_output, state = self.decoder_outputs(input_ids, condition)
        logits = self.lm_head(decoder_output)
        reconstruction = _sequence_nll(logits, input_ids, loss_mask)
        if reduction == "mean":
            reconstruction = reconstruction.mean()
        return TWRCVAEOutput(
            loss=reconstruction if return_loss else None,
            reconstruction_loss=reconstruction,
            logits=logits if return_logits else None,
            latents=latents,
            context_vector=context_vector,
            cache=TWRVAEDecoderCache(state, input_ids.shape[1]) if use_cache else None,
            hidden_states=(decoder_output,) if output_hidden_states else None,
        )


def pad_contexts(features: Sequence[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """`context_input_ids`, `context_attention_mask` (batch, J, length) and `context_speakers` (batch, J) from each
    feature's `context_input_ids` (a list of token-id lists, oldest first) and `context_speakers` (ints)."""
    window = max(len(feature["context_input_ids"]) for feature in features)
    length = max(len(utterance) for feature in features for utterance in feature["context_input_ids"])
    ids = torch.full((len(features), window, length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(features), window, length), dtype=torch.long)
    speakers = torch.zeros((len(features), window), dtype=torch.long)
    for i, feature in enumerate(features):
        for j, utterance in enumerate(feature["context_input_ids"]):
            ids[i, j, : len(utterance)] = torch.tensor(utterance, dtype=torch.long)
            mask[i, j, : len(utterance)] = 1
        speakers[i, : len(feature["context_speakers"])] = torch.tensor(feature["context_speakers"], dtype=torch.long)
    return {"context_input_ids": ids, "context_attention_mask": mask, "context_speakers": speakers}


def _last_step(values: torch.Tensor, counts: torch.LongTensor) -> torch.Tensor:
    """values[b, counts[b] - 1] for (batch, J, size) values."""
    index = (counts - 1).view(-1, 1, 1).expand(-1, 1, values.shape[-1])
    return values.gather(1, index).squeeze(1)


__all__ = ["DialogueEncoderMixin", "TWRCVAEModel", "TWRCVAEOutput", "TWRCVAEPreTrainedModel", "pad_contexts"]
