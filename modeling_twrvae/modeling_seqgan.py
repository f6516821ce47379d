"""SeqGAN for dialogue (Li et al., EMNLP 2017, "Adversarial learning for neural dialogue generation"), a baseline of
TWR-VAE's Table 5.

A response generator (the dialogue models' encoders, `DialogueEncoderMixin`, and a GRU decoder started from the
context's state; no latent) writes responses. A hierarchical discriminator (an LSTM over each utterance's words, an
LSTM over the utterances) tells a human (context, response) pair from a generated one. Training has three phases,
each a run of rounds on `batches_per_round` batches (`adversarial_update`, its `phase`): the generator by likelihood,
the discriminator on human against sampled responses, and then the adversarial rounds of the authors' loop: the
discriminator's updates, one REINFORCE update of the generator whose reward for each prefix of a sampled response is
the discriminator's mean verdict on Monte Carlo completions of it, minus a learned baseline, and one teacher-forced
likelihood update on the human responses.

Citations `ADV:path:line` are the authors' code, jiweil/Neural-Dialogue-Generation at commit 87c698c (Lua Torch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_seqgan import SeqGANConfig
from .dropout import Dropout
from .modeling_dialogwae import SampledResponsesMixin, check_num_return_sequences, checked_responses
from .modeling_twrcvae import DialogueEncoderMixin, _last_step
from .modeling_twrvae import TWRVAEPreTrainedModel

PHASES = ("generator_pretraining", "discriminator_pretraining", "adversarial")


@dataclass
class SeqGANOutput(ModelOutput):
    r"""
    Output of [`SeqGANModel.forward`].

    loss (`torch.FloatTensor`):
        The generator's likelihood loss as the authors' compute it: -log p of each response's tokens summed, averaged
        over the batch (ADV:Atten/atten.lua:220-221,469).
    reconstruction_loss (`torch.FloatTensor`):
        -log p(x | c) of each response (summed over its tokens), averaged over the batch, or one value per response
        with `reduction="none"`. With no latent this is the model's exact negative log-likelihood.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length - 1, vocab_size)`):
        Decoder scores; position t predicts token t + 1.
    context_vector (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The context encoder's state after the last context utterance, the decoder's initial state.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    context_vector: torch.FloatTensor | None = None


def _draw(probabilities: torch.Tensor, generator=None) -> torch.LongTensor:
    """One token (rows, 1) from each row's distribution, by inverting its cumulative sum at one uniform number:
    `torch.multinomial` draws an exponential number for every entry of the vocabulary, which made it most of the
    time of the Monte Carlo completions."""
    cumulative = probabilities.cumsum(-1)
    uniform = torch.rand(probabilities.shape[0], 1, device=probabilities.device, dtype=cumulative.dtype,
                         generator=generator)  # fmt: skip
    # side="right": the first entry above the number, so a token of probability 0 is never drawn
    tokens = torch.searchsorted(cumulative, uniform * cumulative[:, -1:], right=True)
    return tokens.clamp_max(probabilities.shape[-1] - 1)


class HierarchicalDiscriminator(nn.Module):
    """P(human | context, response): an LSTM over each utterance's words, an LSTM over the context's utterances and
    then the response, and a linear layer to two classes on its last state, index 0 human and 1 generated
    (ADV:Adversarial/discriminative/dis_model.lua:90-151,216-226). The authors' discriminator reads one source
    utterance and the response; this one reads the context window's utterances before the response."""

    def __init__(self, config: SeqGANConfig):
        super().__init__()
        size = config.discriminator_hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = Dropout(config.discriminator_dropout)
        self.word_encoder = nn.LSTM(config.embedding_size, size, batch_first=True)
        self.utterance_encoder = nn.LSTM(size, size, batch_first=True)
        self.classifier = nn.Linear(size, 2)

    def encode_words(self, input_ids: torch.LongTensor, lengths: torch.LongTensor) -> torch.Tensor:
        embeddings = self.dropout(self.embed_tokens(input_ids))
        packed = pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.word_encoder(packed)
        return hidden[-1]

    def encode_contexts(
        self, context_input_ids: torch.LongTensor, context_attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """The word-level encodings of the context utterances (batch, window, size), zeros for padding utterances,
        and each dialogue's number of utterances: what `classify` reads beside the responses (computed once for all
        the completions of a batch)."""
        lengths = context_attention_mask.bool().sum(-1)
        real = lengths > 0
        batch, window, _ = context_input_ids.shape
        encodings = self.classifier.weight.new_zeros((batch, window, self.word_encoder.hidden_size))
        encodings[real] = self.encode_words(context_input_ids[real], lengths[real])
        return encodings, real.sum(-1)

    def classify(
        self, contexts: tuple[torch.Tensor, torch.LongTensor], response_ids, response_attention_mask
    ) -> torch.Tensor:
        """Logits (rows, 2) of human against generated for each response after its encoded context (`contexts`
        from `encode_contexts`; its rows repeated when there are several responses a context, each context's
        together)."""
        encodings, counts = contexts
        repeats = response_ids.shape[0] // encodings.shape[0]
        if repeats > 1:
            encodings, counts = encodings.repeat_interleave(repeats, 0), counts.repeat_interleave(repeats, 0)
        rows = response_ids.shape[0]
        response = self.encode_words(response_ids, response_attention_mask.long().sum(-1))
        sequence = torch.cat([encodings, encodings.new_zeros((rows, 1, encodings.shape[-1]))], dim=1)
        sequence = sequence.index_put((torch.arange(rows, device=counts.device), counts), response)
        packed = pack_padded_sequence(self.dropout(sequence), (counts + 1).cpu(), batch_first=True,
                                      enforce_sorted=False)  # fmt: skip
        _, (hidden, _) = self.utterance_encoder(packed)
        return self.classifier(hidden[-1])

    def forward(
        self,
        context_input_ids: torch.LongTensor,
        context_attention_mask: torch.Tensor,
        response_ids: torch.LongTensor,
        response_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (rows, 2) of human against generated for each (context, response)."""
        contexts = self.encode_contexts(context_input_ids, context_attention_mask)
        return self.classify(contexts, response_ids, response_attention_mask)


class SeqGANPreTrainedModel(TWRVAEPreTrainedModel):
    config: SeqGANConfig
    config_class = SeqGANConfig
    base_model_prefix = "seqgan"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation: every weight and bias from U(-0.1, 0.1) (`init_weight`,
        ADV:Atten/atten.lua:188,224; ADV:Adversarial/discriminative/dis_model.lua:224,279), the baseline at 0
        (ADV:Adversarial/Reinforce/model.lua:53-55)."""
        bound = self.config.initializer_range
        if isinstance(module, (nn.GRU, nn.LSTM)):
            for param in module.parameters(recurse=False):
                init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.Linear):
            if getattr(module, "_zero_init", False):
                init.zeros_(module.weight)
                init.zeros_(module.bias)
                return
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -bound, bound)


class SeqGANModel(SeqGANPreTrainedModel, DialogueEncoderMixin, SampledResponsesMixin):
    """SeqGAN for dialogue (`seqgan`), with the package's dialogue encoders."""

    def __init__(self, config: SeqGANConfig):
        super().__init__(config)
        size = config.hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = Dropout(config.dropout)
        self.context_dropout = Dropout(config.context_dropout)
        self.utterance_encoder = nn.GRU(config.embedding_size, size, batch_first=True, bidirectional=True)
        self.context_encoder = nn.GRU(2 * size + config.num_floors, size, batch_first=True)
        self.decoder = nn.GRU(config.embedding_size, size, batch_first=True)
        self.lm_head = nn.Linear(size, config.vocab_size, bias=False)  # ADV:Atten/atten.lua:216, `noBias`
        self.discriminator = HierarchicalDiscriminator(config)
        # the critic that predicts a response's reward from its context (ADV:Adversarial/Reinforce/model.lua:52-59)
        self.baseline = nn.Linear(size, 1)
        self.baseline._zero_init = True
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    # ----- the generator -----

    def context_vector(self, context_input_ids, context_attention_mask=None, context_speakers=None) -> torch.Tensor:
        """c: the context encoder's state after the last context utterance."""
        states, counts = self.encode_context(context_input_ids, context_attention_mask, context_speakers)
        return _last_step(states, counts)

    def decode(self, context: torch.Tensor, input_ids: torch.LongTensor) -> torch.Tensor:
        """Logits of the GRU decoder started from the context's state reading `input_ids`, embeddings dropped out."""
        outputs, _ = self.decoder(self.dropout(self.embed_tokens(input_ids)), context.unsqueeze(0).contiguous())
        return self.lm_head(outputs)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        context_input_ids: torch.LongTensor | None = None,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
        reduction: str = "mean",
        return_dict: bool | None = None,
    ) -> SeqGANOutput | tuple:
        r"""
        The generator's likelihood of the response given its context, teacher-forced.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                The response, right-padded `<bos> ... <eos>`.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for the response's real tokens. Defaults to every token that is not `<pad>`.
            context_input_ids (`torch.LongTensor` of shape `(batch_size, num_utterances, utterance_length)`):
                The context's utterances, oldest first (`prepare_contexts` makes them from text).
            context_attention_mask (`torch.Tensor`, *optional*):
                1 for real tokens of `context_input_ids`.
            context_speakers (`torch.LongTensor` of shape `(batch_size, num_utterances)`, *optional*):
                1 where an utterance is the responder's own, 0 where it is the other speaker's.
            reduction (`str`, *optional*, defaults to `"mean"`):
                `"none"` gives `reconstruction_loss` per response.
            return_dict (`bool`, *optional*):
                Return a [`SeqGANOutput`] (default) rather than a tuple.
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"`reduction` must be 'mean' or 'none', got {reduction!r}.")
        if context_input_ids is None:
            raise ValueError("SeqGAN needs the context: pass `context_input_ids` (batch, J, length).")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        attention_mask, _ = checked_responses(input_ids, attention_mask, self.config)
        context = self.context_vector(context_input_ids, context_attention_mask, context_speakers)
        logits = self.decode(context, input_ids[:, :-1])
        reconstruction = self._token_nll(logits, input_ids, attention_mask).sum(1)
        output = SeqGANOutput(
            loss=reconstruction.mean(),
            reconstruction_loss=reconstruction.mean() if reduction == "mean" else reconstruction,
            logits=logits,
            context_vector=context,
        )
        return output if return_dict else output.to_tuple()

    @staticmethod
    def _token_nll(logits: torch.Tensor, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(logits.float().transpose(1, 2), input_ids[:, 1:], reduction="none")
        return nll * attention_mask[:, 1:].to(nll.dtype)

    # ----- sampling -----

    @contextlib.contextmanager
    def _inference(self):
        """Dropout off, as the authors decode and score with `evaluate()` (ADV:Adversarial/Reinforce/generative.lua:
        93; ADV:Adversarial/discriminative/dis_model.lua:111,143), and no graph."""
        training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(training)

    def _continue(
        self, state: torch.Tensor, tokens: torch.LongTensor, steps: int, generator=None, close: bool = True
    ) -> torch.LongTensor:
        """Up to `steps` tokens sampled after `tokens` (rows, 1) from the decoder `state` before it, `<pad>` after
        `<eos>`; with `close`, `<eos>` is added where a row did not stop. `<pad>`, `<unk>` and `<bos>` are never drawn (the authors
        draw no unknown word, ADV:Decode/decode_model.lua:93-95)."""
        config = self.config
        banned = [i for i in (config.pad_token_id, config.unk_token_id, config.bos_token_id) if i is not None]
        rows = tokens.shape[0]
        finished = torch.zeros(rows, dtype=torch.bool, device=tokens.device)
        drawn = []
        for _ in range(steps):
            output, state = self.decoder(self.embed_tokens(tokens), state)
            logits = self.lm_head(output[:, -1]).float()
            logits[:, banned] = float("-inf")
            tokens = _draw(torch.softmax(logits, dim=-1), generator)
            tokens = tokens.masked_fill(finished[:, None], config.pad_token_id)
            drawn.append(tokens)
            finished |= tokens.squeeze(1) == config.eos_token_id
            if finished.all():
                break
        if (
            close and not finished.all()
        ):  # the authors end every sample with EOT (ADV:Adversarial/Reinforce/generative.lua:10)
            drawn.append(torch.where(finished, config.pad_token_id, config.eos_token_id)[:, None])
        return torch.cat(drawn, dim=1)

    def _sample(self, context: torch.Tensor, generator=None) -> torch.LongTensor:
        """One sampled response per row of `context`: `<bos>`, at most `max_response_length` tokens, `<eos>` last."""
        bos = torch.full((context.shape[0], 1), self.config.bos_token_id, device=context.device)
        steps = self.config.max_response_length - 1
        return torch.cat([bos, self._continue(context.unsqueeze(0).contiguous(), bos, steps, generator)], dim=1)

    def _sampled_batch(self, batch: dict, generator=None) -> tuple[torch.Tensor, torch.LongTensor]:
        """(c, sampled responses) for a batch's contexts, without dropout or graph."""
        with self._inference():
            context = self.context_vector(batch["context_input_ids"], batch.get("context_attention_mask"),
                                          batch.get("context_speakers"))  # fmt: skip
            return context, self._sample(context, generator)

    # ----- the discriminator and the rewards -----

    def encode_discriminator_contexts(self, batch: dict) -> tuple[torch.Tensor, torch.LongTensor]:
        contexts = batch["context_input_ids"]
        mask = batch.get("context_attention_mask")
        mask = contexts != self.config.pad_token_id if mask is None else mask
        return self.discriminator.encode_contexts(contexts, mask)

    def discriminate(self, batch: dict, responses: torch.LongTensor, contexts=None) -> torch.Tensor:
        """The discriminator's logits (rows, 2) for `responses` in the contexts of `batch` (rows of `responses` a
        multiple of the batch's, each context's together), or in `contexts` already encoded
        (`encode_discriminator_contexts`)."""
        contexts = self.encode_discriminator_contexts(batch) if contexts is None else contexts
        return self.discriminator.classify(contexts, responses, responses != self.config.pad_token_id)

    def discriminator_loss(self, batch: dict, generator=None) -> torch.Tensor:
        """Cross-entropy of the discriminator on the batch's human responses (class 0) and on one response sampled
        by the generator for each context (class 1), averaged over the 2 x batch pairs (ADV:Adversarial/Reinforce/
        model.lua:100-137, ClassNLLCriterion's mean, ADV:Adversarial/discriminative/dis_model.lua:220)."""
        _, sampled = self._sampled_batch(batch, generator)
        human = self.discriminate(batch, batch["input_ids"])
        fake = self.discriminate(batch, sampled)
        labels = torch.cat([torch.zeros(len(human), dtype=torch.long), torch.ones(len(fake), dtype=torch.long)])
        return F.cross_entropy(torch.cat([human, fake]).float(), labels.to(human.device))

    @torch.no_grad()
    def rewards(
        self, batch: dict, sequences: torch.LongTensor, generator=None, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, r): the reward of each generated token (rows, length - 1) and of each whole response (rows,); `context`
        is the batch's c when the caller has it (computed without dropout).

        r is the discriminator's P(human) for the response (ADV:Adversarial/Reinforce/model.lua:168-171). With
        `monte_carlo_samples` N > 0, the token that ends a prefix y_1..y_t gets the mean P(human) of N completions
        sampled from that prefix (ADV:Adversarial/Reinforce/model.lua:228-260, generative.lua:79-140); a
        response's last token, whose prefix is the whole response, gets r. With N = 0 every token gets r (the authors'
        `vanillaReinforce`, ADV:Adversarial/Reinforce/generative.lua:168-169)."""
        config, samples = self.config, self.config.monte_carlo_samples
        with self._inference():
            encoded = self.encode_discriminator_contexts(batch)  # once for every completion of the batch
            whole = torch.softmax(self.discriminate(batch, sequences, encoded).float(), dim=-1)[:, 0]
            real = sequences[:, 1:] != config.pad_token_id
            tokens = real.sum(1)  # generated tokens of each response, <eos> included
            rewards = whole[:, None].expand_as(real).clone()
            if samples == 0:
                return rewards * real, whole
            if context is None:
                context = self.context_vector(batch["context_input_ids"], batch.get("context_attention_mask"),
                                              batch.get("context_speakers"))  # fmt: skip
            states, _ = self.decoder(self.embed_tokens(sequences), context.unsqueeze(0).contiguous())
            for t in range(1, sequences.shape[1] - 1):  # the prefix ends at sequences[:, t]
                rows = (tokens > t).nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                state = states[rows, t - 1].repeat_interleave(samples, 0).unsqueeze(0).contiguous()
                prefix = sequences[rows, : t + 1].repeat_interleave(samples, 0)
                steps = config.max_response_length - 1 - t
                completed = torch.cat([prefix, self._continue(state, prefix[:, -1:], steps, generator)], dim=1)
                part = (encoded[0][rows], encoded[1][rows])
                verdict = torch.softmax(self.discriminate(batch, completed, part).float(), dim=-1)[:, 0]
                rewards[rows, t - 1] = verdict.view(-1, samples).mean(1)
        return rewards * real, whole

    def policy_loss(self, batch: dict, sequences: torch.LongTensor, rewards: torch.Tensor, baseline: torch.Tensor):
        """The REINFORCE loss whose gradient the authors' generator receives: reward_scale x (b - R_t) x log p(y_t)
        summed over the generated tokens, divided by the batch size (ADV:Adversarial/Reinforce/model.lua:211,214,
        generative.lua:164-176) and once more, as the generator's update divides every gradient by the batch size
        (ADV:Atten/atten.lua:469)."""
        context = self.context_vector(batch["context_input_ids"], batch.get("context_attention_mask"),
                                      batch.get("context_speakers"))  # fmt: skip
        logits = self.decode(context, sequences[:, :-1])
        log_probs = -self._token_nll(logits, sequences, sequences != self.config.pad_token_id)
        advantage = rewards - baseline[:, None]
        batch_size = sequences.shape[0]
        return self.config.reward_scale * (-advantage * log_probs).sum() / batch_size**2

    # ----- training -----

    def generator_parameters(self) -> list[nn.Parameter]:
        """The response generator's weights: the encoders, the shared embedding, the decoder."""
        modules = (self.embed_tokens, self.utterance_encoder, self.context_encoder, self.decoder, self.lm_head)
        return [param for module in modules for param in module.parameters()]

    def adversarial_optimizers(
        self, learning_rate: float = 1.0, discriminator_lr: float = 0.01, baseline_lr: float = 5e-4
    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer, torch.optim.Optimizer]:
        """The authors' three plain SGD updates: the generator at 1 (`alpha` x `lr`, ADV:Atten/parse.lua:10,
        ADV:Adversarial/Reinforce/parse.lua:12), the discriminator at 0.01 (ADV:Adversarial/discriminative/
        dis_parse.lua:14), the baseline at 0.0005 (ADV:Adversarial/Reinforce/parse.lua:20)."""
        return (
            torch.optim.SGD(self.generator_parameters(), lr=learning_rate),
            torch.optim.SGD(self.discriminator.parameters(), lr=discriminator_lr),
            torch.optim.SGD(self.baseline.parameters(), lr=baseline_lr),
        )

    def batches_per_round(self, critic_updates: int) -> int:
        """The discriminator's updates, each on its own batch, and the generator's on one more
        (`dSteps`, `gSteps`: ADV:Adversarial/Reinforce/parse.lua:23-24, model.lua:160-187)."""
        return critic_updates + 1

    def adversarial_update(
        self,
        batches: Sequence[dict],
        optimizers,
        max_grad_norm: float | None = 5.0,
        generator=None,
        critic_updates: int | None = None,
        phase: str = "adversarial",
    ) -> dict[str, float]:
        """One round of `phase` on `batches`:

        - `"generator_pretraining"`: a likelihood update of the generator on each batch (the authors pre-train it
          with ADV:Atten/train_atten.lua);
        - `"discriminator_pretraining"`: a discriminator update on each batch, human against sampled responses (the
          authors pre-train it with ADV:Adversarial/discriminative/train_dis.lua);
        - `"adversarial"`: the authors' round (ADV:Adversarial/Reinforce/model.lua:160-187): a discriminator update
          on each batch but the last; on the last, the REINFORCE update of the generator and the baseline's, then
          the teacher-forced likelihood update on its human responses (`TeacherForce`, parse.lua:25).

        Every gradient is clipped to `max_grad_norm` (`thres` 5, ADV:Atten/parse.lua:15,
        ADV:Adversarial/discriminative/dis_parse.lua:18). Returns the round's mean likelihood loss per token
        (`autoencoder_loss`, without dropout and without an update in the discriminator's pre-training), minus the
        mean reward of the sampled responses (`generator_loss`) and the first discriminator loss (`critic_loss`); 0
        for what the phase does not compute."""
        if phase not in PHASES:
            raise ValueError(f"`phase` must be one of {PHASES}, got {phase!r}.")
        generator_optimizer, discriminator_optimizer, baseline_optimizer = optimizers
        self.train()
        values = {"autoencoder_loss": 0.0, "generator_loss": 0.0, "critic_loss": 0.0}
        if phase == "generator_pretraining":
            losses = [self._likelihood_update(batch, generator_optimizer, max_grad_norm) for batch in batches]
            values["autoencoder_loss"] = sum(losses) / len(losses)
            return values
        discriminator_batches = batches if phase == "discriminator_pretraining" else batches[:-1]
        critic = [self._discriminator_update(b, discriminator_optimizer, max_grad_norm, generator)
                  for b in discriminator_batches]  # fmt: skip
        values["critic_loss"] = critic[0] if critic else 0.0
        if phase == "discriminator_pretraining":
            with self._inference():  # the generator's likelihood, for the log: it does not change in this phase
                per_token = [self(**b).loss.item() * len(b["input_ids"]) / self._predicted_tokens(b) for b in batches]
                values["autoencoder_loss"] = sum(per_token) / len(per_token)
            return values
        batch = batches[-1]
        context, sequences = self._sampled_batch(batch, generator)
        rewards, whole = self.rewards(batch, sequences, generator, context)
        baseline = self.baseline(context).squeeze(-1)  # from the context, outside the generator's graph
        baseline_optimizer.zero_grad()
        F.mse_loss(baseline, whole).backward()  # MSECriterion's mean (ADV:Adversarial/Reinforce/model.lua:199-206)
        baseline_optimizer.step()
        generator_optimizer.zero_grad()
        self.policy_loss(batch, sequences, rewards, baseline.detach()).backward()
        self._clip(self.generator_parameters(), max_grad_norm)
        generator_optimizer.step()
        values["generator_loss"] = -whole.mean().item()
        values["autoencoder_loss"] = self._likelihood_update(batch, generator_optimizer, max_grad_norm)
        return values

    @staticmethod
    def _clip(parameters, max_grad_norm: float | None) -> None:
        if max_grad_norm:  # the authors scale the step when the norm is above `thres`: the same as clipping it
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)

    def _likelihood_update(self, batch: dict, optimizer, max_grad_norm) -> float:
        """One likelihood update; returns the loss per token, the unit of the validation's `token_nll`."""
        optimizer.zero_grad()
        loss = self(**batch).loss
        loss.backward()
        self._clip(self.generator_parameters(), max_grad_norm)
        optimizer.step()
        return loss.item() * len(batch["input_ids"]) / self._predicted_tokens(batch)

    def _predicted_tokens(self, batch: dict) -> float:
        mask = batch.get("attention_mask")
        mask = batch["input_ids"] != self.config.pad_token_id if mask is None else mask
        return float(mask[:, 1:].sum())

    def _discriminator_update(self, batch: dict, optimizer, max_grad_norm, generator=None) -> float:
        optimizer.zero_grad()
        loss = self.discriminator_loss(batch, generator)
        loss.backward()
        self._clip(self.discriminator.parameters(), max_grad_norm)
        optimizer.step()
        return loss.item()

    # ----- responses -----

    @torch.no_grad()
    def sample_responses(
        self,
        context_input_ids: torch.LongTensor,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
        num_return_sequences: int = 10,
        max_new_tokens: int = 40,
        generator: torch.Generator | None = None,
    ) -> torch.LongTensor:
        """Token ids of `num_return_sequences` responses to each context (a context's rows together, `<bos>` first,
        `<pad>` after `<eos>`), each sampled token by token from the generator (no unknown word). With no latent,
        sampling is what makes a context's responses differ: greedy decoding would repeat one."""
        check_num_return_sequences(num_return_sequences)
        if max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be at least 1, got {max_new_tokens!r}.")
        with self._inference():
            context = self.context_vector(context_input_ids, context_attention_mask, context_speakers)
            context = context.repeat_interleave(num_return_sequences, dim=0)
            bos = torch.full((context.shape[0], 1), self.config.bos_token_id, device=context.device)
            drawn = self._continue(context.unsqueeze(0).contiguous(), bos, max_new_tokens, generator, close=False)
        return torch.cat([bos, drawn], dim=1)


__all__ = ["HierarchicalDiscriminator", "SeqGANModel", "SeqGANOutput", "SeqGANPreTrainedModel"]
