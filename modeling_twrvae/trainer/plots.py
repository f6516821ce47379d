"""Pictures of training and evaluation results (matplotlib PNGs, written atomically)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path) -> None:
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=120, bbox_inches="tight")
    os.replace(temporary, path)


def plot_training_curves(metrics_file: str | Path, png_file: str | Path) -> bool:
    """Reconstruction loss and KL against steps, training and validation (like HR-VAE's Figure 2).

    Returns False, writing nothing, when `metrics_file` has no training record yet.
    """
    records = [json.loads(line) for line in Path(metrics_file).read_text().splitlines() if line.strip()]
    if any("critic_loss" in r for r in records):
        return plot_adversarial_curves(records, png_file)
    train = [r for r in records if "reconstruction_loss" in r]
    evals = [r for r in records if "eval_reconstruction_loss" in r]
    if not train:
        return False
    plt = _figure()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    left.plot(steps, [r["reconstruction_loss"] for r in train], label="train")
    right.plot(steps, [r["kl_decoded"] for r in train], label="train: KL of decoded z")
    right.plot(steps, [r["kl_regularizer"] for r in train], label="train: regulariser", linestyle="--")
    if evals:
        eval_steps = [r["step"] for r in evals]
        left.plot(eval_steps, [r["eval_reconstruction_loss"] for r in evals], "o-", label="validation")
        right.plot(eval_steps, [r["eval_kl_decoded"] for r in evals], "o-", label="validation: KL of decoded z")
    left.set(title="Reconstruction loss (nats per sentence)", xlabel="update")
    right.set(title="KL (nats per sentence)", xlabel="update")
    if any(r.get("kl_weight", 1.0) != 1.0 for r in train):
        weight_axis = right.twinx()
        weight_axis.plot(steps, [r["kl_weight"] for r in train], color="grey", alpha=0.4, label="KL weight")
        weight_axis.set_ylabel("KL weight")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    save_figure(figure, png_file)
    plt.close(figure)
    return True


def plot_adversarial_curves(records: list[dict], png_file: str | Path) -> bool:
    """DialogWAE's, iVAE's or SeqGAN's run: the reconstruction (SeqGAN: likelihood) loss per token (training and
    validation), and the adversarial losses: the generators' (SeqGAN: minus the mean reward) and the critic's (SeqGAN:
    the discriminator's)."""
    train = [r for r in records if "critic_loss" in r]
    evals = [r for r in records if "eval_token_nll" in r]
    plt = _figure()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    left.plot(steps, [r["autoencoder_loss"] for r in train], label="train")
    if evals:
        left.plot([r["step"] for r in evals], [r["eval_token_nll"] for r in evals], "o-", label="validation")
    right.plot(steps, [r["generator_loss"] for r in train], label="generators (SeqGAN: minus the reward)")
    right.plot(steps, [r["critic_loss"] for r in train], label="critic (SeqGAN: discriminator)")
    left.set(title="Reconstruction loss (nats per token)", xlabel="update (round)")
    right.set(title="Adversarial losses", xlabel="update (round)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    save_figure(figure, png_file)
    plt.close(figure)
    return True


def plot_interpolation_rouge(interpolation: dict, png_file: str | Path) -> None:
    """ROUGE F1 of the interpolated sentences against the start and the end sentence (like TWR-VAE's Figure 2)."""
    plt = _figure()
    alphas, rows = interpolation["alphas"], interpolation["rouge"]
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, label in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L")):
        (line,) = axis.plot(alphas, [row[f"{name}_start"] for row in rows], "o-", label=f"{label} vs start")
        axis.plot(alphas, [row[f"{name}_end"] for row in rows], "s--", color=line.get_color(), label=f"{label} vs end")
    axis.set(
        xlabel="alpha (0 = start sentence, 1 = end sentence)",
        ylabel="F1",
        title=f"Interpolation, {interpolation['num_pairs']} pairs",
        ylim=(0, 1),
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    save_figure(figure, png_file)
    plt.close(figure)
