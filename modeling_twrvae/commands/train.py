"""Train a model of the TWR-VAE family on a corpus, on one CPU, one GPU or many (DDP, FSDP, DeepSpeed).

    python training/train.py --config demo --data_dir ../shared/data
    accelerate launch training/train.py --config ptb/twr-vae          # GPUs, `accelerate config`
    torchrun --nproc_per_node 2 training/train.py --config demo      # several CPU processes

Arguments follow transformers' example scripts; `--config FILE.yaml` gives defaults that the command line
overrides. The best model on the validation split (lowest -ELBO, with the KL of the decoded latent) is saved to
`--output_dir` with `save_pretrained`, with its tokenizer, generation config, the resolved training configuration
(`training_config.yaml`, a valid `--config`) and the validation metrics (`eval_results.json`); `metrics.jsonl` logs
every step's numbers and `training_curves.png` plots them. `accelerator.save_state` checkpoints go to
`--output_dir/checkpoint-STEP`, and `--resume_from_checkpoint PATH|latest` continues a run exactly.

The output folder is locked for the whole run (a second run on it fails at once, naming the first); a folder that
holds anything but an earlier run of this script needs `--overwrite_output_dir`, which removes only what this script
writes. Each checkpoint keeps the best model of its time (`best_model/`, hard links), so that a resume from it
restores the best model and `eval_results.json` of that point of the run; `eval_results.json` names the weights it
was measured on (`weights_sha256`). A resume with settings that would change the run is refused.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger

from modeling_twrvae.trainer import arguments
from modeling_twrvae.trainer.arguments import check_model_size
from modeling_twrvae.trainer.checkpointing import CheckpointError, unshare_flattened_weights
from modeling_twrvae.trainer.errors import run_main
from modeling_twrvae.trainer.loop import train
from modeling_twrvae.trainer.memory import reuse_freed_memory
from modeling_twrvae.trainer.output_folder import WEIGHTS_KEY, claim_output_dir
from modeling_twrvae.trainer.precision import trained_precision, usable_mixed_precision
from modeling_twrvae.trainer.steps import NonFiniteLossError

logger = get_logger(__name__)
INTERRUPTED = "interrupted; resume with --resume_from_checkpoint latest"
__all__ = ["CheckpointError", "NonFiniteLossError", "WEIGHTS_KEY", "build_parser", "cli", "main", "parse_args"]


def build_parser() -> argparse.ArgumentParser:
    """train.py's parser (trainer/arguments.py), with this module's docstring as its --help."""
    return arguments.build_parser(__doc__)


def parse_args(argv=None) -> argparse.Namespace:
    """train.py's arguments, over a `--config`'s settings, checked (trainer/arguments.py)."""
    return arguments.parse_args(argv, __doc__)


def main(argv=None) -> dict:
    # the language or the dialogue task (trainer/tasks.py): its data, tokenisation, batches, model and validation
    args, task = arguments.parse_args_and_task(argv, __doc__)
    check_model_size(task)
    args.mixed_precision = usable_mixed_precision(args)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
        # The batch sampler makes global batches; each process takes its slice, so N processes with batch B/N
        # compute the update one process makes with batch B.
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        # On a machine without an accelerator, say so: accelerate then runs torchrun's processes as multi-CPU (gloo).
        cpu=args.use_cpu or not torch.accelerator.is_available(),
    )
    trained = trained_precision(accelerator)
    if args.mixed_precision not in (None, trained):
        warnings.warn(
            f"--mixed_precision {args.mixed_precision} is not available here: training in {trained}.", stacklevel=2
        )
    args.mixed_precision = trained  # what training_config.yaml records: what ran
    accelerator.register_save_state_pre_hook(unshare_flattened_weights)
    if accelerator.device.type == "cpu":
        reuse_freed_memory()
    setup_logging(accelerator)
    # The folder is locked for the whole run, before anything in it is touched (trainer/output_folder.py).
    with claim_output_dir(args, output_dir, accelerator.is_main_process) as use:
        accelerator.wait_for_everyone()
        return train(args, task, accelerator, output_dir, use)


def setup_logging(accelerator) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("accelerate", "matplotlib", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not accelerator.is_main_process:
        logging.getLogger().setLevel(logging.ERROR)
        datasets.disable_progress_bars()


def cli(argv=None) -> None:
    """`training/train.py` and `twrvae train`: `main` with the commands' way of failing (one `error:` line)."""
    run_main(lambda: main(argv), also=(NonFiniteLossError, CheckpointError), interrupted=INTERRUPTED)


if __name__ == "__main__":
    cli()
