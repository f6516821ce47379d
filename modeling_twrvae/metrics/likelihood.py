"""Honest evaluation of a text VAE (He et al., 2019, "Lagging inference networks"), and the papers' own number.

Every likelihood here uses the latent that the decoder actually reads (z_T, or the mean/sum of z_1..z_T, whose
distribution is Gaussian in closed form), so that the numbers are bounds on -log p(x):

- `iw_nll`: -log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x), z_i ~ q(z | x); `elbo_nll` = -ELBO with the closed-form
  KL of the decoded latent. IW-NLL <= -ELBO.
- `paper_nll`: the TWR-VAE reference code's number: reconstruction from the posterior mean plus the timestep-averaged
  regulariser. It is not a bound (the decoded latent's own KL enters with weight 1/T).
- `mutual_information`: E_x KL(q(z|x) || p(z)) - KL(q(z) || p(z)), q(z) the aggregate posterior over the evaluated
  set; `active_units`: dimensions whose posterior mean varies across sentences (Cov > 0.01). Both compare sentences
  with each other, so a set of one sentence measures neither: they are `None` (null in the JSON) then.

Conventions: a sentence's NLL sums over its predicted tokens (its words and `<eos>`, not `<bos>`); NLLs are means
per sentence; PPL = exp(total NLL / number of predicted tokens). `paper_ppl` divides by the tokens including `<bos>`
and `<eos>`, as the reference code does. Each sentence's Monte Carlo noise comes from its own generator
(seed, sentence index), so results do not depend on the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..distributions import DiagonalGaussianDistribution
from ..recurrence import lstm_recurrence

CONVENTIONS = (
    "NLLs are nats per sentence, each summing over the sentence's predicted tokens (its words and <eos>, not <bos>), "
    "averaged over sentences; PPL = exp(total NLL / num_predicted_tokens). paper_nll/paper_ppl follow the TWR-VAE "
    "reference code (posterior-mean reconstruction + timestep-averaged KL, PPL over tokens including <bos> and "
    "<eos>) and are not bounds on -log p(x)."
)
# mutual information and active units compare the sentences' posteriors with each other
MIN_SENTENCES_FOR_LATENT_STATISTICS = 2


@dataclass
class LikelihoodResult:
    """Per-sentence values, in the order of the input sentences."""

    iw_nll: torch.Tensor
    elbo_nll: torch.Tensor
    elbo_nll_mc: torch.Tensor
    reconstruction_loss: torch.Tensor
    kl_decoded: torch.Tensor
    kl_regularizer: torch.Tensor
    paper_nll: torch.Tensor
    num_predicted_tokens: torch.Tensor
    num_tokens: torch.Tensor
    posterior_mean: torch.Tensor
    posterior_logvar: torch.Tensor
    mi_sample: torch.Tensor


def sentence_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


@torch.no_grad()
def likelihoods(
    model,
    input_ids: Sequence[Sequence[int]],
    iw_samples: int = 500,
    batch_size: int = 4,
    samples_per_pass: int = 125,
    seed: int = 0,
    progress: bool = True,
    output_layer_dtype: torch.dtype | None = None,
    refine_steps: int = 0,
) -> LikelihoodResult:
    """IW-NLL, ELBO and the papers' number for each tokenised sentence (`<bos> ... <eos>` id lists).

    `batch_size` sentences are scored together, `samples_per_pass` of their k samples per decoder pass (memory is
    about batch_size * samples_per_pass sequences). The encoder runs once per sentence, and so does the word half of
    the decoder's input projection (see `decoder_nll`). `output_layer_dtype=torch.bfloat16` runs the decoder's
    output layer, most of the arithmetic, in bf16 with an fp32 log-softmax: faster on GPUs and CPUs with bf16
    kernels, not exact (`benchmarks/iw_nll_speed.py` measures the deviation); the default is exact fp32.
    `refine_steps > 0` scores an SA-VAE as its authors do: the posterior refined by that many steps of the model's
    refinement (`model.refine_posterior`, the config's `svi_*` settings) is the proposal of the IW-NLL and the ELBO.
    """
    for name, value in (("iw_samples", iw_samples), ("batch_size", batch_size), ("samples_per_pass", samples_per_pass)):
        if value < 1:
            raise ValueError(f"`{name}` must be >= 1, got {value}.")
    if not input_ids:
        raise ValueError("Nothing to evaluate: the evaluation set is empty.")
    model.eval()
    device = model.device
    config = model.config
    order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))  # little padding, same results
    rows = {name: [None] * len(input_ids) for name in LikelihoodResult.__dataclass_fields__}
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=f"IW-NLL (k={iw_samples})", disable=not progress):
        length = max(len(input_ids[i]) for i in batch)
        ids = torch.full((len(batch), length), config.pad_token_id, dtype=torch.long)
        for row, index in enumerate(batch):
            ids[row, : len(input_ids[index])] = torch.tensor(input_ids[index])
        ids = ids.to(device)
        mask = (torch.arange(length) < torch.tensor([len(input_ids[i]) for i in batch])[:, None]).to(device)

        at_mean = model(
            input_ids=ids,
            attention_mask=mask,
            sample_posterior=False,
            reduction="none",
            return_logits=False,
            refine_steps=refine_steps or None,
        )
        if at_mean.refined_posterior_mean is not None:
            posterior = DiagonalGaussianDistribution(at_mean.refined_posterior_mean, at_mean.refined_posterior_logvar)
        else:
            posterior = model.posterior(at_mean.posterior_mean, at_mean.posterior_logvar, mask.sum(1))
        mean, logvar = posterior.mean.float(), posterior.logvar.float()
        noise = torch.stack([torch.randn(iw_samples + 1, config.latent_size, generator=sentence_generator(seed, i))
                             for i in batch]).to(device)  # fmt: skip
        # sample 0 of each sentence's stream is kept for the mutual-information estimate
        latents = mean[:, None] + (0.5 * logvar[:, None]).exp() * noise[:, 1:]
        log_q = DiagonalGaussianDistribution(mean[:, None], logvar[:, None]).log_prob(latents)
        standard = torch.zeros_like(mean[:, None])
        log_prior = DiagonalGaussianDistribution(standard, standard).log_prob(latents)
        reconstruction = torch.empty(len(batch), iw_samples, device=device)
        for start in range(0, iw_samples, samples_per_pass):
            chunk = latents[:, start : start + samples_per_pass]
            count = chunk.shape[1]
            nll = decoder_nll(model, ids, mask, chunk.to(model.dtype), output_layer_dtype=output_layer_dtype)
            reconstruction[:, start : start + count] = nll.view(len(batch), count)
        log_weights = -reconstruction + log_prior - log_q
        iw = -(torch.logsumexp(log_weights, dim=1) - math.log(iw_samples))
        kl_decoded = posterior.kl().float()
        values = {
            "iw_nll": iw,
            "elbo_nll": reconstruction.mean(1) + kl_decoded,
            "elbo_nll_mc": -log_weights.mean(1),
            "reconstruction_loss": reconstruction.mean(1),
            "kl_decoded": kl_decoded,
            "kl_regularizer": at_mean.kl_regularizer.float(),
            "paper_nll": at_mean.reconstruction_loss.float() + at_mean.kl_regularizer.float(),
            "num_predicted_tokens": mask.sum(1) - 1,
            "num_tokens": mask.sum(1),
            "posterior_mean": mean,
            "posterior_logvar": logvar,
            "mi_sample": mean + (0.5 * logvar).exp() * noise[:, 0],
        }
        for row, index in enumerate(batch):
            for name, value in values.items():
                rows[name][index] = value[row].cpu()
    return LikelihoodResult(**{name: torch.stack(values) for name, values in rows.items()})


def decoder_nll(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    latents: torch.Tensor,
    tokens_per_chunk: int = 512,
    output_layer_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """-log p(x | z) per sequence, as `model(input_ids, latents=...)` gives it, for many sequences at once.

    With `latents` of shape (batch, samples, latent_size), each of the `batch` sentences is scored under each of its
    samples and the result has shape (batch * samples,), sentence-major; with (batch, latent_size), one latent each.
    Sharing a sentence between its samples, an LSTM decoder on a CPU computes the word half of its first layer's
    input projection once per sentence rather than once per sample, and runs the recurrence unrolled (see
    `modeling_twrvae.recurrence`); elsewhere the sentence is repeated for `nn.LSTM`.

    The softmax layer, which dominates the cost with a large vocabulary, runs only at positions that predict a real
    token, a bounded number of positions at a time (the logits of thousands of padded sequences would not fit in
    memory, and freeing huge buffers costs the operating system more than the arithmetic).
    """
    if latents.dim() == 2:
        latents = latents[:, None]
    samples = latents.shape[1]
    if _can_share_sentences(model, input_ids):
        hidden = _shared_lstm_decoder_output(model, input_ids, latents)
    else:
        repeated = input_ids.repeat_interleave(samples, dim=0)
        hidden, _ = model.decoder.output_features(repeated, latents.flatten(0, 1))
    input_ids = input_ids.repeat_interleave(samples, dim=0)
    predicting = attention_mask.repeat_interleave(samples, dim=0)[:, 1:].bool()
    rows, positions = predicting.nonzero(as_tuple=True)
    targets = input_ids[:, 1:][rows, positions]
    selected = hidden[:, :-1][rows, positions]
    head = model.decoder.lm_head
    weight = head.weight if output_layer_dtype is None else head.weight.to(output_layer_dtype)
    nll = torch.zeros(input_ids.shape[0], device=hidden.device, dtype=torch.float32)
    for start in range(0, len(rows), tokens_per_chunk):
        features = selected[start : start + tokens_per_chunk]
        if output_layer_dtype is None:
            logits = head(features).float()
        else:  # products in the low precision, bias and log-softmax in fp32
            logits = F.linear(features.to(output_layer_dtype), weight).float() + head.bias.float()
        token_nll = F.cross_entropy(logits, targets[start : start + tokens_per_chunk], reduction="none")
        nll.index_add_(0, rows[start : start + tokens_per_chunk], token_nll)
    return nll


def _can_share_sentences(model, input_ids: torch.Tensor) -> bool:
    rnn = model.decoder.rnn
    return (
        input_ids.device.type == "cpu"
        and isinstance(rnn, torch.nn.LSTM)
        and not model.training
        and rnn.bias
        and not rnn.bidirectional
        and not rnn.proj_size
        and rnn.batch_first
    )


def _shared_lstm_decoder_output(model, input_ids: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """What `decoder.output_features` gives for every (sentence, sample) pair, (batch * samples, length, hidden),
    with the words' part of the first layer's input projection, W_ih[:, :E] e_t, computed once per sentence."""
    decoder = model.decoder
    rnn = decoder.rnn
    batch, samples, _ = latents.shape
    flat = latents.flatten(0, 1)
    hidden, cell = decoder.initial_state(flat)
    embeddings = decoder.dropout(decoder.embed_tokens(decoder.decoder_input_ids(input_ids)))
    size = embeddings.shape[-1]
    weight = rnn.weight_ih_l0
    words = F.linear(embeddings, weight[:, :size], rnn.bias_ih_l0 + rnn.bias_hh_l0)  # (batch, length, 4H)
    latent_part = F.linear(decoder.step_latents(flat), weight[:, size:]).view(batch, samples, 1, -1)
    output, _ = lstm_recurrence((words[:, None] + latent_part).flatten(0, 1), rnn.weight_hh_l0, hidden[0], cell[0])
    for layer in range(1, rnn.num_layers):
        projected = F.linear(
            output,
            getattr(rnn, f"weight_ih_l{layer}"),
            getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}"),
        )
        output, _ = lstm_recurrence(projected, getattr(rnn, f"weight_hh_l{layer}"), hidden[layer], cell[layer])
    return decoder.output_dropout(output)


def mutual_information(
    mean: torch.Tensor, logvar: torch.Tensor, samples: torch.Tensor, chunk: int = 256
) -> float | None:
    """He et al.'s estimator, E_x[log q(z_x|x) - log q(z_x)], one sample z_x ~ q(z|x) per sentence, and
    q(z) = (1/N) sum_x' q(z|x') over the whole evaluated set (not per batch, so the batch size does not matter).
    `None` for fewer than two sentences: the aggregate posterior of one is its own posterior, 0 by construction.

    log q(z_x|x) is taken at the sample, paired with log q(z_x) (He et al. use its expectation, the negative
    entropy): the pairing cancels most Monte Carlo noise, and posteriors that are all equal give exactly 0.
    """
    if mean.shape[0] < MIN_SENTENCES_FOR_LATENT_STATISTICS:
        return None
    mean, logvar, samples = mean.double(), logvar.double(), samples.double()
    count = mean.shape[0]
    log_posterior = DiagonalGaussianDistribution(mean, logvar).log_prob(samples)
    every_posterior = DiagonalGaussianDistribution(mean[None], logvar[None])
    log_aggregate = []
    for start in range(0, count, chunk):
        log_densities = every_posterior.log_prob(samples[start : start + chunk, None])  # (chunk, N)
        log_aggregate.append(torch.logsumexp(log_densities, dim=1) - math.log(count))
    return float((log_posterior - torch.cat(log_aggregate)).mean())


def active_units(mean: torch.Tensor, threshold: float = 0.01) -> int | None:
    """Dimensions d with Cov_x(E_q[z_d | x]) > threshold (Burda et al., 2016; He et al., 2019); `None` for fewer
    than two sentences (a variance across one sentence is not defined)."""
    if mean.shape[0] < MIN_SENTENCES_FOR_LATENT_STATISTICS:
        return None
    return int((mean.double().var(dim=0, unbiased=True) > threshold).sum())


def elbo_summary(sums: torch.Tensor, count: int, tokens: int) -> dict:
    """The -ELBO, its perplexity and its terms from per-text sums over `count` texts of `tokens` predicted tokens:
    `sums` holds the summed reconstruction loss, KL of the decoded latent and KL regulariser, in that order (what a
    validation pass over batches accumulates)."""
    reconstruction, kl_decoded, kl_regularizer = (sums[:3] / count).tolist()
    return {
        "elbo_nll": reconstruction + kl_decoded,
        "elbo_ppl": math.exp((sums[0] + sums[1]).item() / tokens),
        "reconstruction_loss": reconstruction,
        "kl_decoded": kl_decoded,
        "kl_regularizer": kl_regularizer,
    }


def summarize_likelihoods(result: LikelihoodResult, iw_samples: int) -> dict:
    predicted = int(result.num_predicted_tokens.sum())
    tokens = int(result.num_tokens.sum())
    sentences = len(result.iw_nll)

    def per_token(values):
        return math.exp(float(values.double().sum()) / predicted)

    return {
        "iw_nll": float(result.iw_nll.double().mean()),
        "iw_ppl": per_token(result.iw_nll),
        "elbo_nll": float(result.elbo_nll.double().mean()),
        "elbo_ppl": per_token(result.elbo_nll),
        "reconstruction_loss": float(result.reconstruction_loss.double().mean()),
        "kl_decoded": float(result.kl_decoded.double().mean()),
        "kl_regularizer": float(result.kl_regularizer.double().mean()),
        "paper_nll": float(result.paper_nll.double().mean()),
        "paper_ppl": math.exp(float(result.paper_nll.double().sum()) / tokens),
        "mutual_information": mutual_information(result.posterior_mean, result.posterior_logvar, result.mi_sample),
        "active_units": active_units(result.posterior_mean),
        "num_sentences": sentences,
        "num_predicted_tokens": predicted,
        "iw_samples": iw_samples,
    }


__all__ = [
    "CONVENTIONS",
    "MIN_SENTENCES_FOR_LATENT_STATISTICS",
    "LikelihoodResult",
    "active_units",
    "likelihoods",
    "mutual_information",
    "decoder_nll",
    "elbo_summary",
    "summarize_likelihoods",
]
