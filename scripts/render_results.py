"""Write the Yelp numbers into the pages that show them, each from its one results file.

    python scripts/render_yelp_results.py [--check]

- `benchmarks/results/yelp/test_results.json` (training/evaluate.py's output for twrvae-yelp, see docs/yelp.md) fills
  the `<!-- yelp-results:begin -->` ... `<!-- yelp-results:end -->` blocks of docs/yelp.md and the README;
- `benchmarks/results/table2-yelp-sentiment.md` (benchmarks/compare_models.py's table) fills the
  `<!-- table2-yelp:begin -->` ... `<!-- table2-yelp:end -->` block of docs/table2.md.

`--check` writes nothing and exits 1 when a page differs from what its file gives (the tests run it), so that the
pages never disagree with the files or with each other.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "yelp" / "test_results.json"
TABLE = ROOT / "benchmarks" / "results" / "table2-yelp-sentiment.md"
# page -> (block name, what fills it)
PAGES = {
    ROOT / "docs" / "yelp.md": ("yelp-results", "page"),
    ROOT / "README.md": ("yelp-results", "summary"),
    ROOT / "docs" / "table2.md": ("table2-yelp", "table"),
}


def block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def share(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary(results: dict) -> str:
    sentiment = results["sentiment"]
    point = sentiment["transfer"]["operating_point"]
    return (
        f"On the 2,000 test sentences: reconstruction BLEU {results['reconstruction_bleu']:.1f} against the input "
        f"({results['reconstruction_bleu_other_input']:.1f} against another input), "
        f"{share(results['reconstruction_exact_match'])} exact; the judge keeps the input's sentiment for "
        f"{share(sentiment['reconstruction_label_kept'])} of reconstructions; the `positive` vector at strength "
        f"{point['strength']:g} turns {share(point['accuracy'])} of sentences to the other sentiment at content BLEU "
        f"{point['content_bleu']:.1f}."
    )


def page(results: dict) -> str:
    sentiment = results["sentiment"]
    point = sentiment["transfer"]["operating_point"]
    lines = [
        f"Measured on {results['num_sentences']:,} test sentences ({results['num_predicted_tokens']:,} predicted "
        f"tokens), k = {results['iw_samples']}, seed {results['seed']}; weights `{results['weights_sha256'][:12]}`.",
        "",
        "| IW-NLL | -ELBO | KL (decoded z) | MI | active units | rec. BLEU | rec. BLEU vs another input | exact | "
        "label kept (judge) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {results['iw_nll']:.2f} | {results['elbo_nll']:.2f} | {results['kl_decoded']:.2f} | "
        f"{results['mutual_information']:.2f} | {results['active_units']} | {results['reconstruction_bleu']:.1f} | "
        f"{results['reconstruction_bleu_other_input']:.1f} | {share(results['reconstruction_exact_match'])} | "
        f"{share(sentiment['reconstruction_label_kept'])} |",
        "",
        *goals(results),
        "",
        f"The judge ({sentiment['judge']['model']}) gives {share(sentiment['judge']['test_accuracy'])} of the test "
        "sentences their own label.",
        "",
        "**Sentiment transfer** by the `positive` vector, each sentence moved towards the other label:",
        "",
        "| strength | transfer accuracy | content BLEU |",
        "|---|---|---|",
        *(
            f"| {r['strength']:g} | {share(r['accuracy'])} | {r['content_bleu']:.1f} |"
            for r in sentiment["transfer"]["rows"]
        ),
        "",
        f"Operating point: strength {point['strength']:g} ({point['rule']}).",
        "",
        "![Transfer accuracy and content BLEU against strength](yelp-transfer.png)",
        "",
        "**Samples**, greedy, against as many held-out test sentences:",
        "",
        "| sentences | distinct-1 | distinct-2 | copies of a training sentence | fluency (KN trigram perplexity) |",
        "|---|---|---|---|---|",
        *(
            f"| {name.replace('_', ' ')} ({row['num_samples']:,}) | {row['distinct_1']:.3f} | {row['distinct_2']:.3f} "
            f"| {share(row['copies_of_training'])} | {row['fluency_perplexity']:.1f} |"
            for name, row in sentiment["samples"].items()
        ),
        "",
        "**Examples**, drawn by the seed (not chosen by hand), with the judge's verdict on the transferred sentence:",
        "",
        "| input | label | reconstruction | transferred | judged |",
        "|---|---|---|---|---|",
        *(
            f"| {cell(e['input'])} | {e['label']} | {cell(e['reconstruction'])} | {cell(e['transferred'])} | "
            f"{e['judged']} |"
            for e in sentiment["examples"]
        ),
        "",
        "**Interpolation** between two test sentences (linear, posterior modes):",
        "",
        "| alpha | text |",
        "|---|---|",
        *(
            f"| {alpha:.1f} | {cell(text)} |"
            for alpha, text in zip(
                results["interpolation"]["alphas"], results["examples"]["interpolation"]["path"], strict=True
            )
        ),
    ]
    return "\n".join(lines)


def goals(results: dict) -> list[str]:
    """The model's goals on the test split, each with what it reached."""
    sentiment = results["sentiment"]
    point = sentiment["transfer"]["operating_point"]
    samples = sentiment["samples"]
    held_out, aggregate, prior = samples["held_out"], samples.get("aggregate_posterior"), samples["prior"]
    rows = [
        ("reconstruction BLEU against the input", ">= 60", f"{results['reconstruction_bleu']:.1f}",
         results["reconstruction_bleu"] >= 60),
        ("reconstruction BLEU against another input", "<= 10", f"{results['reconstruction_bleu_other_input']:.1f}",
         results["reconstruction_bleu_other_input"] <= 10),
        ("input's label kept by reconstructions (judge)", ">= 90%", share(sentiment["reconstruction_label_kept"]),
         sentiment["reconstruction_label_kept"] >= 0.9),
        ("transfer accuracy at content BLEU >= 40", ">= 85%",
         f"{share(point['accuracy'])} at BLEU {point['content_bleu']:.1f} (strength {point['strength']:g})",
         point["accuracy"] >= 0.85 and point["content_bleu"] >= 40),
    ]  # fmt: skip
    if aggregate:
        ratio = aggregate["distinct_2"] / held_out["distinct_2"]
        rows += [
            ("aggregate-posterior samples' distinct-2, against held-out sentences", "within 20%",
             f"{aggregate['distinct_2']:.3f} against {held_out['distinct_2']:.3f}", abs(ratio - 1) <= 0.2),
            ("aggregate-posterior samples that copy a training sentence", "<= 5%",
             share(aggregate["copies_of_training"]), aggregate["copies_of_training"] <= 0.05),
            ("aggregate-posterior samples' fluency, against the prior's", "no worse",
             f"{aggregate['fluency_perplexity']:.1f} against {prior['fluency_perplexity']:.1f}",
             aggregate["fluency_perplexity"] <= prior["fluency_perplexity"]),
        ]  # fmt: skip
    lines = ["| goal | target | reached | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {target} | {value} | {'yes' if met else '**no**'} |" for name, target, value, met in rows]
    return lines


def render(kind: str) -> str:
    if kind == "table":
        return TABLE.read_text(encoding="utf-8").strip()
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    return page(results) if kind == "page" else summary(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Write nothing; exit 1 if a page is out of date.")
    args = parser.parse_args(argv)
    stale = []
    for path, (name, kind) in PAGES.items():
        text = path.read_text(encoding="utf-8")
        if not block(name).search(text):
            raise SystemExit(f"{path} has no <!-- {name}:begin --> ... <!-- {name}:end --> block.")
        filled = render(kind)
        new = block(name).sub(lambda match, filled=filled: match.group(1) + filled + "\n" + match.group(2), text)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"out of date with their results files: {', '.join(map(str, stale))}; run scripts/render_yelp_results.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
