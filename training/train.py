"""Train a model of the TWR-VAE family: `python training/train.py --config demo --data_dir ../shared/data`, or
`accelerate launch training/train.py ...` / `torchrun ... training/train.py ...`. The arguments, and what a run
writes, are documented in `modeling_twrvae/commands/train.py` (`--help`) and docs/training.md."""

from modeling_twrvae.commands.train import cli

if __name__ == "__main__":
    cli()
