"""Make a trained model a Hugging Face Hub repository: weights, remote code, tokenizer, card, results; then push.

    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo               # builds outputs/demo/hub
    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo --push        # ... and uploads it

The folder (default `hub/` inside CHECKPOINT_DIR) holds `model.safetensors`, `config.json` with `auto_map`, the
modeling source files for `trust_remote_code`, the tokenizer, `generation_config.json`, the card as `README.md`
(model_cards/twrvae.md), `training_curves.png`, `training_config.yaml` and the evaluation JSON. It is built under a
temporary name and renamed into place only once it has been loaded back in a fresh Python process where this package
cannot be imported, with `trust_remote_code=True`, and has produced the same greedy text as the checkpoint; otherwise
nothing is written and nothing is pushed. `--push` uploads with `HfApi` (`create_repo`, `upload_folder`), with the
token of `HF_TOKEN` or of `hf auth login`; a failure is one error line and leaves the local folder as it was.

What it never does: delete or replace a path it did not write. `--output_dir` may be a new path, an empty folder, or
a Hub folder this command wrote earlier (it holds the hidden `.twrvae-hub-folder`, listing the files written with
their SHA-256, and nothing else, each file unchanged); anything else (a file, the checkpoint's own folder or one that
holds it, a folder with other files) is refused. The folder that holds `--output_dir` is locked
(`.twrvae.lock`) while the Hub folder is built and put in place, so two publishes, or a publish and a training run
writing there, cannot interleave. Results reach the card only when they were measured on these weights: the
`weights_sha256` of the evaluation JSON and of `eval_results.json` must be the checkpoint's (see
`modeling_twrvae.file_utils.weights_fingerprint`); other or unmarked results are refused. Every failure is one
`error: ...` line (training/errors.py) and writes nothing.
"""

from modeling_twrvae.commands.publish import cli

if __name__ == "__main__":
    cli()
