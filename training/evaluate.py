"""Measure a trained model on a corpus with honest metrics (see modeling_twrvae/evaluation.py).

    python training/evaluate.py --model_name_or_path outputs/demo --dataset e2e --split test \
        --data_dir ../shared/data --iw_samples 500 --output_file outputs/demo/test_results.json --seed 0

Writes the JSON results, a Markdown table beside them (`.md`), and a PNG of interpolation ROUGE (like TWR-VAE's
Figure 2), and prints a summary with reconstructions, prior samples and one interpolation. A dialogue model
(`twr-cvae`, `cvae`) is evaluated by training/evaluate_dialogue.py instead (see there for its arguments).
"""

from modeling_twrvae.commands.evaluate import cli

if __name__ == "__main__":
    cli()
