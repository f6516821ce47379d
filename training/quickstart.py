"""Train a small TWR-VAE on Penn Treebank in a few minutes on a CPU and show what it learned.

    python training/quickstart.py --data_dir ../shared/data

Builds a word tokenizer on the PTB validation split, trains a preset (TWR-VAE by default) on it, reports the loss
terms on held-out PTB test sentences, greedy reconstructions, prior samples and an interpolation, and saves model
and tokenizer with `save_pretrained`, ready for `AutoModel.from_pretrained(output_dir)`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_twrvae import TWRVAEConfig, TWRVAEModel, train_tokenizer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--preset", default="twr-vae", choices=TWRVAEConfig.presets())
    parser.add_argument("--max_train_steps", type=int, default=400)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", default="outputs/quickstart")
    return parser.parse_args(argv)


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --data_dir pointing at the folder that holds ptb/.")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no text.")
    return lines


def main(argv=None):
    args = parse_args(argv)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    data = Path(args.data_dir) / "ptb"
    train_texts = read_lines(data / "ptb.valid.txt")
    test_texts = read_lines(data / "ptb.test.txt")[:500]

    tokenizer = train_tokenizer(train_texts, vocab_size=10000)
    config = TWRVAEConfig.from_preset(args.preset, vocab_size=len(tokenizer))
    model = TWRVAEModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, weight_decay=1e-5, eps=1e-6)
    print(f"preset {args.preset}: {model.num_parameters():,} parameters, vocabulary {len(tokenizer):,} words")

    # Length-sorted buckets, shuffled: little padding, as the papers' code does.
    order = sorted(range(len(train_texts)), key=lambda i: len(train_texts[i].split()))
    size = args.per_device_train_batch_size
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    model.train()
    progress = tqdm(range(args.max_train_steps), desc="training")
    for step in progress:
        if step % len(batches) == 0:
            random.shuffle(batches)
        batch = tokenizer([train_texts[i] for i in batches[step % len(batches)]], padding=True, return_tensors="pt")
        output = model(**batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        progress.set_postfix(
            rec=f"{output.reconstruction_loss.item():.1f}", kl=f"{output.kl_regularizer.item():.2f}", refresh=False
        )

    model.eval()
    totals = {"reconstruction_loss": 0.0, "kl_regularizer": 0.0, "kl_decoded": 0.0}
    with torch.no_grad():
        for i in range(0, len(test_texts), 64):
            output = model(**tokenizer(test_texts[i : i + 64], padding=True, return_tensors="pt"), reduction="none")
            for key in totals:
                totals[key] += getattr(output, key).sum().item()
    print(f"\nheld-out PTB test ({len(test_texts)} sentences, decoded from the posterior mean), per sentence:")
    for key, value in totals.items():
        print(f"  {key:20s} {value / len(test_texts):8.2f}")

    print("\ngreedy reconstructions from the posterior mean (input -> output):")
    samples = test_texts[:3]
    for text, rebuilt in zip(samples, model.reconstruct(samples, tokenizer, max_new_tokens=40), strict=True):
        print(f"  {text}\n  -> {rebuilt}\n")
    print("greedy decodings of prior samples:")
    for text in model.sample(4, tokenizer, generator=torch.Generator().manual_seed(args.seed), max_new_tokens=40):
        print(f"  {text}")
    print("\nlinear interpolation between two test sentences:")
    alphas, texts = model.interpolate(test_texts[10], test_texts[20], tokenizer, steps=5, max_new_tokens=40)
    for alpha, text in zip(alphas, texts, strict=True):
        print(f"  {alpha:.2f}  {text}")

    model.save_pretrained(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    print(f"saved to {args.output_dir}: AutoModel.from_pretrained({args.output_dir!r})")


if __name__ == "__main__":
    main()
