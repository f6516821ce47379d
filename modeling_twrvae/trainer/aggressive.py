"""Aggressive training of the inference network (He et al., 2019, "Lagging Inference Networks and Posterior
Collapse in Variational Autoencoders"; code `jxhe/vae-lagging-encoder`, cited below as LAG:path:line).

Before each decoder update, the encoder alone is updated on fresh random training batches until its loss stops
improving (LAG:text.py:366-405); then one update of the decoder on the outer batch (LAG:text.py:407-424). At the
first end of an epoch where the mutual information on the validation split is lower than at the previous one, the
aggressive phase ends for good and training goes on as a plain VAE (LAG:text.py:455-464).

The authors use two SGD optimisers, one for the encoder and one for the decoder (LAG:text.py:325-327). Here the run's
one optimiser (Adam, the same for every model of a comparison) does both: an encoder-only update leaves the
decoder's gradients `None`, so Adam skips those parameters and their moments and step counts stay as they were,
which is what a separate optimiser per part gives. The learning-rate schedule advances once per outer update.

The extra batches come from a generator of their own, whose state the checkpoint keeps (`trainer_state.json`), with
the phase flag, the last mutual information and the count of encoder-only updates: a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

import base64

import torch
from accelerate.logging import get_logger

from modeling_twrvae.data.length_grouping import LengthGroupedBatchSampler
from modeling_twrvae.metrics.likelihood import mutual_information
from modeling_twrvae.trainer.steps import loss_scale

logger = get_logger(__name__)
SEED_OFFSET = 7_919  # the extra batches' generator is seeded with --seed + this, apart from every other stream
STATE_KEYS = ("aggressive", "aggressive_mi", "aggressive_encoder_updates", "aggressive_generator")


def initial_state(args) -> dict:
    """The phase is on from the start; the previous mutual information is 0 (LAG:text.py:331-333, `pre_mi = 0`)."""
    return {"aggressive": bool(args.aggressive), "aggressive_mi": 0.0, "aggressive_encoder_updates": 0}


class ExtraBatches:
    """Random training batches for the encoder-only updates: uniform, with replacement, over the training batches
    (LAG:text.py:389, `train_data_batch[np.random.random_integers(0, len - 1)]`). The batches are cut once, as the
    authors' are (the length-grouped batches of epoch 0), from a generator seeded by --seed."""

    def __init__(self, dataset, lengths, batch_size: int, seed: int, collator, device, min_batch_size: int = 1):
        sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, seed=seed, min_batch_size=min_batch_size)
        self.batches = sampler.batches()
        self.dataset = dataset
        self.collator = collator
        self.device = device
        self.generator = torch.Generator().manual_seed(seed + SEED_OFFSET)

    def draw(self) -> dict:
        index = int(torch.randint(len(self.batches), (1,), generator=self.generator))
        features = [self.dataset[i] for i in self.batches[index]]
        return {key: value.to(self.device) for key, value in self.collator(features).items()}

    def state(self) -> dict:
        return {"aggressive_generator": base64.b64encode(self.generator.get_state().numpy().tobytes()).decode()}

    def load_state(self, state: dict) -> None:
        if state.get("aggressive_generator"):
            raw = base64.b64decode(state["aggressive_generator"])
            self.generator.set_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))


class InnerLoopStop:
    """The authors' stopping rule of the encoder-only loop (LAG:text.py:366-405): the loss summed over the sentences
    of `check_interval` consecutive updates, divided by their predicted tokens (words and `</s>`), each measured
    before its update; the loop stops after a window whose loss is higher than the previous window's (the first
    window is compared with 1e4, so in practice it never stops the loop), and in any case once `max_sub_iter - 1` updates have
    run (`while sub_iter < 100`)."""

    def __init__(self, max_sub_iter: int = 100, check_interval: int = 15):
        self.max_sub_iter = max_sub_iter
        self.check_interval = check_interval
        self.sub_iter = 1
        self.previous = 1e4
        self.current = 0.0
        self.words = 0

    def running(self) -> bool:
        return self.sub_iter < self.max_sub_iter

    def record(self, loss_sum: float, words: int) -> bool:
        """Account for one update's summed loss and tokens; return whether the loop stops."""
        self.current += loss_sum
        self.words += words
        stop = False
        if self.sub_iter % self.check_interval == 0:
            current = self.current / self.words
            if self.previous - current < 0:
                stop = True
            self.previous, self.current, self.words = current, 0.0, 0
        self.sub_iter += 1
        return stop


def part_parameters(model) -> tuple[list, list]:
    """(encoder parameters, every other trainable parameter: the decoder's)."""
    encoder, decoder = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (encoder if name.split(".")[0] == "encoder" or ".encoder." in name else decoder).append(parameter)
    if not encoder:
        raise ValueError("--aggressive needs a model with an `encoder` module; this one has none.")
    return encoder, decoder


def _forward_backward(args, accelerator, model, batch, kl_weight: float):
    output = model(
        **batch,
        kl_weight=kl_weight,
        sample_posterior=args.sample_posterior,
        free_bits=args.free_bits,
        reduction="none",
        return_logits=False,
    )
    accelerator.backward(output.loss.mean() * loss_scale(args, accelerator, batch["input_ids"].shape[0]))
    if args.max_grad_norm:  # over all parameters, the decoder's gradients included (LAG:text.py:385)
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
    return output


def _step_only(optimizer, frozen) -> None:
    for parameter in frozen:
        parameter.grad = None
    optimizer.step()
    optimizer.zero_grad()


def encoder_updates(args, accelerator, model, optimizer, batch, kl_weight: float, extra: ExtraBatches) -> int:
    """The inner loop: encoder-only updates, the first on the outer batch and each next one on a fresh random
    batch, until `InnerLoopStop` says so. Returns the number of updates."""
    _, decoder = part_parameters(model)
    rule = InnerLoopStop(args.aggressive_max_sub_iter, args.aggressive_burn_interval)
    updates = 0
    current = batch
    optimizer.zero_grad()
    while rule.running():
        output = _forward_backward(args, accelerator, model, current, kl_weight)
        words = int((current["attention_mask"].sum(1) - 1).sum())
        _step_only(optimizer, decoder)
        updates += 1
        current = extra.draw()
        if rule.record(float(output.loss.detach().double().sum()), words):
            break
    return updates


def aggressive_step(args, accelerator, model, optimizer, lr_scheduler, batch, kl_weight: float,
                    extra: ExtraBatches) -> tuple[torch.Tensor, int]:  # fmt: skip
    """The encoder-only inner loop, then one decoder-only update on `batch` (LAG:text.py:407-424). Returns the
    outer update's losses, as `loop.train_step` does, and the number of encoder-only updates."""
    updates = encoder_updates(args, accelerator, model, optimizer, batch, kl_weight, extra)
    encoder, _ = part_parameters(model)
    output = _forward_backward(args, accelerator, model, batch, kl_weight)
    _step_only(optimizer, encoder)
    lr_scheduler.step()
    values = torch.stack(
        [output.loss.mean(), output.reconstruction_loss.mean(), output.kl_regularizer.mean(), output.kl_decoded.mean()]
    ).detach()
    return values.detach(), updates


@torch.no_grad()
def validation_mutual_information(model, loader, accelerator, seed: int) -> float:
    """The mutual information of the decoded latent on the validation split, as `evaluate.py` measures it
    (`metrics.likelihood.mutual_information`: the aggregate posterior over the whole split, one sample per
    sentence). The authors average a within-batch estimate over batches (LAG:modules/encoders/encoder.py:111-145),
    which is biased low for small batches; the whole-split estimate is the one the package reports."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    means, logvars, samples = [], [], []
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for batch in loader:
            output = model(**batch, sample_posterior=False, reduction="none", return_logits=False)
            posterior = unwrapped.posterior(
                output.posterior_mean, output.posterior_logvar, batch["attention_mask"].sum(1)
            )
            mean = accelerator.gather_for_metrics(posterior.mean.float().contiguous()).cpu()
            logvar = accelerator.gather_for_metrics(posterior.logvar.float().contiguous()).cpu()
            means.append(mean)
            logvars.append(logvar)
            samples.append(mean + (0.5 * logvar).exp() * torch.randn_like(mean))
    model.train()
    value = mutual_information(torch.cat(means), torch.cat(logvars), torch.cat(samples))
    return 0.0 if value is None else value


def end_of_epoch(model, loader, accelerator, seed: int, state: dict) -> float:
    """The authors' end of the aggressive phase (LAG:text.py:455-464): the phase ends for good when the validation
    mutual information is lower than at the previous end of an epoch. Returns the mutual information."""
    value = validation_mutual_information(model, loader, accelerator, seed)
    if value - state["aggressive_mi"] < 0:
        state["aggressive"] = False
        logger.info(
            f"step {state['global_step']}: validation MI {value:.4f} < {state['aggressive_mi']:.4f}, the last "
            "epoch's: the aggressive phase ends, training goes on as a plain VAE"
        )
    state["aggressive_mi"] = value
    return value


__all__ = [
    "ExtraBatches",
    "InnerLoopStop",
    "aggressive_step",
    "encoder_updates",
    "end_of_epoch",
    "initial_state",
    "part_parameters",
    "validation_mutual_information",
]
