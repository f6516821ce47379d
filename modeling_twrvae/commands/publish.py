"""Make a trained model a Hugging Face Hub repository: weights, remote code, tokenizer, card, results; then push.

    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo               # builds outputs/demo/hub
    python training/publish.py outputs/demo --repo-id ORG/twrvae-e2e-demo --push        # ... and uploads it

The folder (default `hub/` inside CHECKPOINT_DIR) holds `model.safetensors`, `config.json` with `auto_map`, the
modeling source files for `trust_remote_code`, the tokenizer, `generation_config.json`, the card as `README.md`
(modeling_twrvae/hub/templates/twrvae.md), `training_curves.png`, `training_config.yaml` and the evaluation JSON. It is built under a
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
`error: ...` line (modeling_twrvae/trainer/errors.py) and writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transformers.utils import logging as transformers_logging

from modeling_twrvae.hub.folder import (  # noqa: F401  (the names tests and scripts use, from the command's module)
    DEFAULT_EVAL_RESULTS,
    HUB_MARKER,
    PublishError,
    _valid_repo_id,
    build_hub_folder,
    greedy_probe,
    list_files,
    push,
    resolve_token,
    verify_hub_folder,
)
from modeling_twrvae.trainer.errors import run_main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint_dir", help="A folder written by training/train.py (or save_pretrained).")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="ORG/NAME on the Hub.")
    parser.add_argument("--output_dir", "--output-dir", help="Where the Hub folder goes (default: CHECKPOINT_DIR/hub).")
    parser.add_argument(
        "--eval_results",
        "--eval-results",
        help=f"JSON of training/evaluate.py for the card (default: CHECKPOINT_DIR/{DEFAULT_EVAL_RESULTS} if present).",
    )
    parser.add_argument(
        "--eval_data_description",
        help="How the card names the evaluation data when it is a file, e.g. 'the last 1,000 documents of ...'.",
    )
    parser.add_argument(
        "--license",
        help="The card's licence id. Default: the training corpus's terms (e.g. cc-by-sa-4.0 for E2E, `other` with "
        "the terms named for PTB and Yelp), apache-2.0 for your own data; another is used with a warning.",
    )
    parser.add_argument("--push", action="store_true", help="Upload the verified folder to the Hub.")
    parser.add_argument("--private", action="store_true", help="Create the repository private (with --push).")
    parser.add_argument("--revision", help="Branch to upload to (created if needed; default: main).")
    parser.add_argument("--commit-message", "--commit_message", dest="commit_message", help="Commit message.")
    args = parser.parse_args(argv)
    if not _valid_repo_id(args.repo_id):
        parser.error(f"--repo-id must be ORG/NAME (letters, digits, '-', '_', '.'), got {args.repo_id!r}.")
    return args


def main(argv=None) -> Path:
    """The command; a problem raises `PublishError` (or `OSError`, ...), which `run_main` prints as one line."""
    args = parse_args(argv)
    transformers_logging.disable_progress_bar()  # loading and saving bars: the command prints its own summary
    token = resolve_token() if args.push else None
    folder = build_hub_folder(
        args.checkpoint_dir,
        args.repo_id,
        output_dir=args.output_dir,
        eval_results=args.eval_results,
        eval_data_description=args.eval_data_description,
        license=args.license,
    )
    print(f"verified: {folder} loads with trust_remote_code=True without the package and gives the same text.")
    list_files(folder)
    if not args.push:
        print(f"not pushed (add --push to upload it to https://huggingface.co/{args.repo_id}).")
        return folder
    url, commit = push(folder, args.repo_id, token, args.private, args.revision, args.commit_message)
    print(f"pushed to {url}" + (f" (branch {args.revision})" if args.revision else "") + f": {commit.commit_url}")
    return folder


def cli(argv=None) -> None:
    """`training/publish.py` and `twrvae publish`: `main` with the commands' way of failing (one `error:` line)."""
    run_main(lambda: main(argv), also=(PublishError,))


if __name__ == "__main__":
    cli()
