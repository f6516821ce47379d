"""DialogWAE (Gu et al., ICLR 2019): a conditional Wasserstein autoencoder for dialogue, a baseline of TWR-VAE's
Table 5.

The context c and the response x are encoded by the dialogue models' encoders (`DialogueEncoderMixin`). A posterior
network draws Gaussian noise from [x; c] and a generator turns it into z; a prior network draws noise from c alone
(from one of a Gaussian mixture's components in DialogWAE-GMP, picked by a hard Gumbel-softmax) and a second
generator turns it into z~. A GRU decoder started from [z; c] writes the response. Training alternates three updates,
each with its own optimiser (`adversarial_optimizers`): the autoencoder on the reconstruction (`forward`), the two
noise networks and generators on the critic's verdict (`generator_loss`), and the critic, with a gradient penalty,
on telling [z; c] from [z~; c] (`critic_loss`). `adversarial_update` runs one round as the authors' loop does.

Citations `WAE:path:line` are the authors' code, guxd/DialogWAE at commit 29f206a.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_dialogwae import DialogWAEConfig
from .dropout import Dropout
from .generation_twrvae import decode_text
from .modeling_twrcvae import DialogueEncoderMixin, _last_step
from .modeling_twrvae import TWRVAEPreTrainedModel, check_token_ids, right_padded_lengths


@dataclass
class DialogWAEOutput(ModelOutput):
    r"""
    Output of [`DialogWAEModel.forward`].

    loss (`torch.FloatTensor`):
        The autoencoder's loss as the authors compute it: -log p of the response's tokens, averaged over every token
        of the batch (WAE:models/dialogwae.py:141-148).
    reconstruction_loss (`torch.FloatTensor`):
        -log p(x | z, c) summed over each response's tokens, averaged over the batch (one value per response with
        `reduction="none"`): the number the package's other dialogue models report.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length - 1, vocab_size)`):
        Decoder scores; position t predicts token t + 1.
    latents (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        The posterior's z that the decoder read.
    context_vector (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The context encoder's state after the last context utterance.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    context_vector: torch.FloatTensor | None = None


class NoiseNetwork(nn.Module):
    """Gaussian noise from its input: two linear + batch-norm + tanh layers, then the mean and log-variance
    (WAE:modules.py:153-187)."""

    def __init__(self, input_size: int, latent_size: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, latent_size), nn.BatchNorm1d(latent_size), nn.Tanh(),
            nn.Linear(latent_size, latent_size), nn.BatchNorm1d(latent_size), nn.Tanh(),
        )  # fmt: skip
        self.mean = nn.Linear(latent_size, latent_size)
        self.logvar = nn.Linear(latent_size, latent_size)

    def forward(self, inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        hidden = self.layers(inputs)
        mean, logvar = self.mean(hidden), self.logvar(hidden)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        return mean + noise * torch.exp(0.5 * logvar)


class MixtureNoiseNetwork(nn.Module):
    """DialogWAE-GMP's prior network: K Gaussians from the context, one of them chosen per dialogue by a hard
    Gumbel-softmax over K logits (WAE:modules.py:190-242)."""

    def __init__(self, input_size: int, latent_size: int, num_components: int, temperature: float):
        super().__init__()
        self.num_components, self.temperature = num_components, temperature
        self.component_logits = nn.Sequential(
            nn.Linear(latent_size, latent_size), nn.BatchNorm1d(latent_size), nn.Tanh(),
            nn.Linear(latent_size, num_components),
        )  # fmt: skip
        self.layers = nn.Sequential(
            nn.Linear(input_size, latent_size), nn.BatchNorm1d(latent_size), nn.Tanh(),
            nn.Linear(latent_size, latent_size), nn.BatchNorm1d(latent_size), nn.Tanh(),
        )  # fmt: skip
        self.mean = nn.Linear(latent_size, num_components * latent_size)
        self.logvar = nn.Linear(latent_size, num_components * latent_size)

    def forward(self, inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        hidden = self.layers(inputs)
        logits = self.component_logits(hidden)
        # the hard Gumbel-softmax of F.gumbel_softmax(tau, hard=True), with noise from `generator`
        uniform = torch.rand(logits.shape, device=logits.device, dtype=logits.dtype, generator=generator)
        gumbel = -torch.log((-torch.log(uniform.clamp_min(1e-10))).clamp_min(1e-10))
        soft = torch.softmax((logits + gumbel) / self.temperature, dim=-1)
        hard = F.one_hot(soft.argmax(dim=-1), self.num_components).to(soft.dtype)
        choice = (hard - soft.detach() + soft).unsqueeze(1)  # (batch, 1, K): straight-through
        batch = inputs.shape[0]
        means = self.mean(hidden).view(batch, self.num_components, -1)
        logvars = self.logvar(hidden).view(batch, self.num_components, -1)
        noise = torch.randn(means.shape, device=means.device, dtype=means.dtype, generator=generator)
        return torch.bmm(choice, means + noise * torch.exp(0.5 * logvars)).squeeze(1)


def _generator(latent_size: int) -> nn.Sequential:
    """Noise to z: two linear + batch-norm + ReLU layers and a linear one (WAE:models/dialogwae.py:66-74)."""
    return nn.Sequential(
        nn.Linear(latent_size, latent_size), nn.BatchNorm1d(latent_size), nn.ReLU(),
        nn.Linear(latent_size, latent_size), nn.BatchNorm1d(latent_size), nn.ReLU(),
        nn.Linear(latent_size, latent_size),
    )  # fmt: skip


def checked_responses(input_ids, attention_mask, config) -> tuple[torch.Tensor, torch.LongTensor]:
    """(attention mask, lengths) of right-padded `<bos> ... <eos>` responses; `ValueError` for ids outside the
    vocabulary, left padding or a response with nothing after `<bos>`."""
    check_token_ids(input_ids, config.vocab_size, "input_ids")
    if attention_mask is None:
        attention_mask = input_ids != config.pad_token_id
    lengths = right_padded_lengths(input_ids, attention_mask, "response")
    if (lengths < 2).any():
        raise ValueError("Every response needs a token after `<bos>`; remove empty responses from the batch.")
    return attention_mask, lengths


def check_num_return_sequences(num_return_sequences) -> None:
    if isinstance(num_return_sequences, bool) or not isinstance(num_return_sequences, int) or num_return_sequences < 1:
        raise ValueError(f"`num_return_sequences` must be a positive integer, got {num_return_sequences!r}.")


class SampledResponsesMixin:
    """`respond` for the dialogue models that draw responses with their own `sample_responses` (DialogWAE, iVAE,
    SeqGAN) rather than transformers' `generate`."""

    def respond(
        self,
        context_turns: Sequence[str],
        tokenizer,
        num_return_sequences: int = 10,
        speakers: Sequence[int] | None = None,
        max_new_tokens: int = 40,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """`num_return_sequences` responses to one dialogue's turns (oldest first), as `sample_responses` draws
        them."""
        if isinstance(context_turns, str):
            raise ValueError("`context_turns` is a list of turns (strings), oldest first, not one string.")
        batch = self.prepare_contexts([context_turns], tokenizer, None if speakers is None else [speakers])
        sequences = self.sample_responses(**batch, num_return_sequences=num_return_sequences,
                                          max_new_tokens=max_new_tokens, generator=generator)  # fmt: skip
        return decode_text(tokenizer, sequences, self.config)


class DialogWAEPreTrainedModel(TWRVAEPreTrainedModel):
    config: DialogWAEConfig
    config_class = DialogWAEConfig
    base_model_prefix = "dialogwae"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation: orthogonal GRU matrices (their biases as PyTorch draws them,
        WAE:modules.py:63-66,113-116,258-262), U(-0.02, 0.02) linear layers with zero biases (WAE:modules.py:173-176,
        WAE:models/dialogwae.py:117-120), U(-0.05, 0.05) in the mixture prior (WAE:modules.py:219-222), U(-0.1, 0.1)
        for the output layer (WAE:modules.py:263-264); word embeddings from N(0, 1), the padding row 0."""
        config = self.config
        if isinstance(module, nn.GRU):
            for name, param in module.named_parameters(recurse=False):
                if name.startswith("weight"):
                    init.orthogonal_(param)
                else:
                    bound = module.hidden_size**-0.5
                    init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.Linear):
            bound = getattr(module, "_initializer_range", config.initializer_range)
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                module.reset_running_stats()
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, 0.0, 1.0)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()


class DialogWAEModel(DialogWAEPreTrainedModel, DialogueEncoderMixin, SampledResponsesMixin):
    """DialogWAE (`dialogwae`) and DialogWAE-GMP (`dialogwae-gmp`), with the package's dialogue encoders."""

    def __init__(self, config: DialogWAEConfig):
        super().__init__(config)
        size, latent = config.hidden_size, config.latent_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.dropout = Dropout(config.dropout)
        self.context_dropout = Dropout(config.context_dropout)
        self.utterance_encoder = nn.GRU(config.embedding_size, size, batch_first=True, bidirectional=True)
        self.context_encoder = nn.GRU(2 * size + config.num_floors, size, batch_first=True)
        self.posterior_network = NoiseNetwork(3 * size, latent)  # q(e | x, c) (WAE:models/dialogwae.py:64)
        self.posterior_generator = _generator(latent)
        if config.num_prior_components > 1:
            self.prior_network = MixtureNoiseNetwork(size, latent, config.num_prior_components,
                                                     config.gumbel_temperature)  # fmt: skip
            for layer in self.prior_network.modules():
                if isinstance(layer, nn.Linear):
                    layer._initializer_range = config.mixture_initializer_range
        else:
            self.prior_network = NoiseNetwork(size, latent)  # p(e | c) (WAE:models/dialogwae.py:63)
        self.prior_generator = _generator(latent)
        self.decoder = nn.GRU(config.embedding_size, config.condition_size, batch_first=True)
        self.lm_head = nn.Linear(config.condition_size, config.vocab_size)
        self.lm_head._initializer_range = config.output_initializer_range
        # the critic on [z; c] (WAE:models/dialogwae.py:91-99)
        self.critic = nn.Sequential(
            nn.Linear(config.condition_size, 2 * size), nn.BatchNorm1d(2 * size), nn.LeakyReLU(0.2),
            nn.Linear(2 * size, 2 * size), nn.BatchNorm1d(2 * size), nn.LeakyReLU(0.2),
            nn.Linear(2 * size, 1),
        )  # fmt: skip
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    # ----- the codes -----

    def encode(
        self, input_ids, attention_mask, context_input_ids, context_attention_mask=None, context_speakers=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, c): the response's encoding (without `<bos>`, as the authors' WAE:models/dialogwae.py:136) and the
        context encoder's state after the last context utterance."""
        attention_mask, lengths = checked_responses(input_ids, attention_mask, self.config)
        return self.encode_utterances(input_ids[:, 1:], lengths - 1), self.context_vector(
            context_input_ids, context_attention_mask, context_speakers
        )

    def context_vector(self, context_input_ids, context_attention_mask=None, context_speakers=None) -> torch.Tensor:
        """c: the context encoder's state after the last context utterance, each utterance read without its `<bos>`
        (WAE:train.py:172)."""
        if context_attention_mask is None:
            context_attention_mask = context_input_ids != self.config.pad_token_id
        states, counts = self.encode_context(
            context_input_ids[..., 1:], context_attention_mask[..., 1:], context_speakers
        )
        return _last_step(states, counts)

    def posterior_latents(self, response: torch.Tensor, context: torch.Tensor, generator=None) -> torch.Tensor:
        """z ~ q(z | x, c): the posterior network's noise through its generator (WAE:models/dialogwae.py:122-125)."""
        return self.posterior_generator(self.posterior_network(torch.cat([response, context], dim=-1), generator))

    def prior_latents(self, context: torch.Tensor, generator=None) -> torch.Tensor:
        """z~ ~ p(z | c): the prior network's noise through its generator (WAE:models/dialogwae.py:127-130)."""
        return self.prior_generator(self.prior_network(context, generator))

    # ----- the three losses -----

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        context_input_ids: torch.LongTensor | None = None,
        context_attention_mask: torch.Tensor | None = None,
        context_speakers: torch.LongTensor | None = None,
        reduction: str = "mean",
        return_dict: bool | None = None,
    ) -> DialogWAEOutput | tuple:
        r"""
        The autoencoder: encode the response and its context, draw z from the posterior, decode the response
        teacher-forced from [z; c] (WAE:models/dialogwae.py:132-154).

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
                Return a [`DialogWAEOutput`] (default) rather than a tuple.
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"`reduction` must be 'mean' or 'none', got {reduction!r}.")
        if context_input_ids is None:
            raise ValueError("DialogWAE needs the context: pass `context_input_ids` (batch, J, length).")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        response, context = self.encode(
            input_ids, attention_mask, context_input_ids, context_attention_mask, context_speakers
        )
        latents = self.posterior_latents(response, context)
        logits = self.decode(torch.cat([latents, context], dim=-1), input_ids[:, :-1])
        targets = input_ids[:, 1:]
        real = attention_mask[:, 1:].bool()
        token_nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none") * real
        reconstruction = token_nll.sum(1)
        output = DialogWAEOutput(
            loss=token_nll.sum() / real.sum(),
            reconstruction_loss=reconstruction.mean() if reduction == "mean" else reconstruction,
            logits=logits,
            latents=latents,
            context_vector=context,
        )
        return output if return_dict else output.to_tuple()

    def decode(self, condition: torch.Tensor, input_ids: torch.LongTensor, state=None):
        """Logits of the GRU decoder started from `condition` ([z; c]) reading `input_ids`, embeddings dropped out
        (WAE:modules.py:266-277); with `state`, it continues from there and the new state comes back too."""
        hidden = condition.unsqueeze(0) if state is None else state
        outputs, new_state = self.decoder(self.dropout(self.embed_tokens(input_ids)), hidden)
        logits = self.lm_head(outputs)
        return logits if state is None else (logits, new_state)

    def _adversarial_codes(self, batch: dict, generator=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, z~, c) for the adversarial updates: the encoders without dropout and outside the graph, as the authors
        put the context encoder in evaluation mode and detach x and c (WAE:models/dialogwae.py:157-166,184-197)."""
        training = self.dropout.training, self.context_dropout.training
        self.dropout.eval(), self.context_dropout.eval()
        try:
            with torch.no_grad():
                response, context = self.encode(
                    batch["input_ids"], batch.get("attention_mask"), batch["context_input_ids"],
                    batch.get("context_attention_mask"), batch.get("context_speakers"),
                )  # fmt: skip
        finally:
            self.dropout.train(training[0]), self.context_dropout.train(training[1])
        return self.posterior_latents(response, context, generator), self.prior_latents(context, generator), context

    def _critic(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.critic(torch.cat([latents, context], dim=-1)).mean()

    def generator_loss(self, batch: dict, generator=None) -> torch.Tensor:
        """The noise networks' and generators' loss, mean critic(z~, c) - mean critic(z, c): it moves the prior's
        codes towards the critic's side of the posterior's and the posterior's away (WAE:models/dialogwae.py:156-181).
        The critic's own weights get no gradient."""
        posterior, prior, context = self._adversarial_codes(batch, generator)
        with self._critic_frozen():
            return self._critic(prior, context) - self._critic(posterior, context)

    @contextlib.contextmanager
    def _critic_frozen(self):
        """The critic's weights out of the graph, as the authors' `requires_grad = False` (WAE:models/dialogwae.py:
        160-161,177-178)."""
        flags = [param.requires_grad for param in self.critic.parameters()]
        for param in self.critic.parameters():
            param.requires_grad_(False)
        try:
            yield
        finally:
            for param, flag in zip(self.critic.parameters(), flags, strict=True):
                param.requires_grad_(flag)

    def critic_loss(self, batch: dict, generator=None) -> torch.Tensor:
        """The critic's loss, mean critic(z, c) - mean critic(z~, c) plus the gradient penalty on points between
        them (WAE:models/dialogwae.py:183-215). As in the authors' code, the penalty differentiates the batch mean of
        the critic, so each point's gradient is 1/batch of its own (WAE:models/dialogwae.py:206-210)."""
        posterior, prior, context = self._adversarial_codes(batch, generator)
        posterior, prior = posterior.detach(), prior.detach()
        loss = self._critic(posterior, context) - self._critic(prior, context)
        weight = self.config.gradient_penalty_weight
        if weight > 0:
            alpha = torch.rand(prior.shape[0], 1, device=prior.device, dtype=prior.dtype, generator=generator)
            between = (alpha * prior + (1 - alpha) * posterior).requires_grad_(True)
            (gradient,) = torch.autograd.grad(self._critic(between, context), between, create_graph=True)
            loss = loss + weight * ((gradient.norm(2, dim=1) - 1) ** 2).mean()
        return loss

    # ----- training -----

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """What the autoencoder's update changes: the encoders (and the shared embedding), the posterior network and
        generator, the decoder (WAE:models/dialogwae.py:103-106)."""
        modules = (self.embed_tokens, self.utterance_encoder, self.context_encoder, self.posterior_network,
                   self.posterior_generator, self.decoder, self.lm_head)  # fmt: skip
        return [param for module in modules for param in module.parameters()]

    def adversarial_optimizers(
        self, autoencoder_lr: float = 1.0, generator_lr: float = 5e-5, critic_lr: float = 1e-5
    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer, torch.optim.Optimizer]:
        """The authors' three optimisers (WAE:models/dialogwae.py:103-111, rates WAE:configs.py:23-25): SGD on the
        autoencoder, RMSprop on the noise networks and generators, RMSprop on the critic."""
        noise = [self.posterior_network, self.posterior_generator, self.prior_network, self.prior_generator]
        return (
            torch.optim.SGD(self.autoencoder_parameters(), lr=autoencoder_lr),
            torch.optim.RMSprop([p for module in noise for p in module.parameters()], lr=generator_lr),
            torch.optim.RMSprop(self.critic.parameters(), lr=critic_lr),
        )

    def batches_per_round(self, critic_updates: int) -> int:
        """How many batches one round reads: DialogWAE's critic takes each of its updates on the next batch."""
        return critic_updates

    def critic_batches(self, batches: Sequence[dict], critic_updates: int) -> list[dict]:
        """The batches of a round's critic updates, one an update."""
        return list(batches)

    def adversarial_update(
        self,
        batches: Sequence[dict],
        optimizers,
        max_grad_norm: float | None = 1.0,
        generator=None,
        critic_updates: int | None = None,
    ) -> dict[str, float]:
        """One round of the authors' loop (WAE:train.py:176-194): the autoencoder and the generators on the first
        batch, then the critic's updates (`critic_batches`: DialogWAE's one on each batch, they take 5, `n_iters_d`,
        WAE:configs.py:22). The autoencoder's gradient is clipped to `max_grad_norm` over the encoders and the
        decoder (WAE:models/dialogwae.py:151)."""
        autoencoder, noise, critic = optimizers
        self.train()
        autoencoder.zero_grad()
        reconstruction = self(**batches[0]).loss
        reconstruction.backward()
        clipped = [p for m in (self.embed_tokens, self.utterance_encoder, self.context_encoder, self.decoder,
                               self.lm_head) for p in m.parameters()]  # fmt: skip
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(clipped, max_grad_norm)
        autoencoder.step()
        noise.zero_grad()
        generator_value = self.generator_loss(batches[0], generator)
        generator_value.backward()
        noise.step()
        critic_values = []
        for batch in self.critic_batches(batches, critic_updates or len(batches)):
            critic.zero_grad()
            value = self.critic_loss(batch, generator)
            value.backward()
            critic.step()
            critic_values.append(value.item())
        return {"autoencoder_loss": reconstruction.item(), "generator_loss": generator_value.item(),
                "critic_loss": critic_values[0]}  # fmt: skip

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
        `<pad>` after `<eos>`), each decoded greedily from its own draw of the prior's z~ (WAE:models/dialogwae.py:
        241-250; the authors decode 40 tokens at most, WAE:configs.py:4)."""
        check_num_return_sequences(num_return_sequences)
        config = self.config
        context = self.context_vector(context_input_ids, context_attention_mask, context_speakers)
        context = context.repeat_interleave(num_return_sequences, dim=0)
        latents = self.prior_latents(context, generator)
        rows = context.shape[0]
        state = torch.cat([latents, context], dim=-1).unsqueeze(0).contiguous()
        outputs = [torch.full((rows, 1), config.bos_token_id, device=context.device)]
        finished = torch.zeros(rows, dtype=torch.bool, device=context.device)
        for _ in range(max_new_tokens):
            logits, state = self.decode(None, outputs[-1], state)
            step = logits[:, -1].argmax(dim=-1, keepdim=True).masked_fill(finished[:, None], config.pad_token_id)
            outputs.append(step)
            finished |= step.squeeze(1) == config.eos_token_id
            if finished.all():
                break
        return torch.cat(outputs, dim=1)


__all__ = ["DialogWAEModel", "DialogWAEOutput", "DialogWAEPreTrainedModel"]
