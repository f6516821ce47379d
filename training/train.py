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

from modeling_twrvae.commands.train import cli

if __name__ == "__main__":
    cli()
