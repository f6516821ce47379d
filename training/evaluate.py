"""Measure a trained model with honest metrics: `python training/evaluate.py --model_name_or_path outputs/demo
--dataset e2e --split test --data_dir ../shared/data`. The arguments and metrics are documented in
`modeling_twrvae/commands/evaluate.py` (`--help`) and docs/evaluation.md."""

from modeling_twrvae.commands.evaluate import cli

if __name__ == "__main__":
    cli()
