"""Write the published numbers into the pages that show them, each from its one results file.

    python scripts/render_results.py [--check]

- `benchmarks/results/main_job-cpu.json` (benchmarks/main_job.py: the main job's test results, its machine and its
  time) fills the `<!-- main-job:begin -->` ... `<!-- main-job:end -->` blocks of the README, docs/results.md and
  docs/latent-space.md;
- `benchmarks/results/yelp/test_results.json` (training/evaluate.py's output for twrvae-yelp, see docs/yelp.md) fills
  the `<!-- yelp-results:begin -->` ... `<!-- yelp-results:end -->` blocks of docs/yelp.md and the README;
- `benchmarks/results/table2-yelp-sentiment.md` (benchmarks/compare_models.py's table) fills the
  `<!-- table2-yelp:begin -->` ... `<!-- table2-yelp:end -->` block of docs/table2.md, and
  `benchmarks/results/yelp-5400/table2-yelp-sentiment.md` (the same comparison at 5,400 updates) its
  `<!-- table2-yelp-5400:begin -->` block and `benchmarks/results/yelp-budget-check/budget-check.md`
  (benchmarks/budget_check.py) its `<!-- table2-yelp-budget:begin -->` block;
- `benchmarks/results/table5.json` (benchmarks/compare_dialogue_models.py: every seed's results) fills the
  `<!-- table5:begin -->` (the tables) and `<!-- table5-examples:begin -->` (responses of seed 1) blocks of
  docs/table5.md;
- the comparison's plots in `benchmarks/results/` are copied into docs/ (FIGURES), where the pages show them.

`--check` writes nothing and exits 1 when a page or a figure differs from what its file gives (the tests run it), so
that the pages never disagree with the files or with each other.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from modeling_twrvae.file_utils import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_RESULTS = ROOT / "benchmarks" / "results"
RESULTS = BENCHMARK_RESULTS / "yelp" / "test_results.json"
MAIN_JOB = BENCHMARK_RESULTS / "main_job-cpu.json"
TABLE5 = BENCHMARK_RESULTS / "table5.json"
IDLE_LOAD = 0.7  # a 1-minute load average above this before the run: the machine was shared, the time is no timing
# (page, block name, what fills it)
PAGES = [
    (ROOT / "README.md", "main-job", "main job summary"),
    (ROOT / "docs" / "results.md", "main-job", "main job table"),
    (ROOT / "docs" / "latent-space.md", "main-job", "main job page"),
    (ROOT / "docs" / "yelp.md", "yelp-results", "page"),
    (ROOT / "README.md", "yelp-results", "summary"),
    (ROOT / "docs" / "table2.md", "table2-yelp", "table table2-yelp-sentiment.md"),
    (ROOT / "docs" / "table2.md", "table2-yelp-5400", "table yelp-5400/table2-yelp-sentiment.md"),
    (ROOT / "docs" / "table2.md", "table2-yelp-budget", "table yelp-budget-check/budget-check.md"),
    (ROOT / "docs" / "table5.md", "table5", "table5"),
    (ROOT / "docs" / "table5.md", "table5-examples", "table5 examples"),
]
# (the results file's plot, its copy that a page shows)
FIGURES = (
    [(BENCHMARK_RESULTS / "table2-e2e-ptb-yahoo.png", ROOT / "docs" / "table2.png")]
    + [
        (
            BENCHMARK_RESULTS / folder / f"table2-yelp-sentiment{kind}.png",
            ROOT / "docs" / f"table2-yelp{suffix}{kind}.png",
        )
        for folder, suffix in ((".", ""), ("yelp-5400", "-5400"))
        for kind in ("", "-curves", "-interpolation")
    ]
    + [(BENCHMARK_RESULTS / "yelp-budget-check" / "budget-check.png", ROOT / "docs" / "table2-yelp-budget.png")]
)
FACTS = ("eat_type", "area", "food", "family_friendly", "price_range", "customer_rating")


def block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)


def cell(text: str) -> str:
    """Text for a Markdown table cell: `|` escaped, and `<` / `>` so that `<unk>` shows rather than reads as HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


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


def ran_on(run: dict) -> str:
    """How long the job took, where and when; said plainly when the machine was shared."""
    machine = run["machine"]
    minutes, seconds = divmod(round(run["seconds"]), 60)
    flags = " ".join(flag for flag in machine["cpu_flags"] if flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    text = (
        f"{minutes} min {seconds} s on a {machine['cpu_count']}-core {machine['cpu']} ({flags}), torch "
        f"{machine['torch']}, {machine['date_utc'][:10]}, commit {(machine['git_commit'] or 'unknown')[:7]}"
    )
    if run.get("extra_arguments"):
        text += ", with " + " and ".join(f"`{name}='{value}'`" for name, value in run["extra_arguments"].items())
    load = machine.get("load_average_1min")
    if load is not None and load > IDLE_LOAD:
        text += f"; other work shared the machine (load {load:.1f} before the run), so this is not a timing"
    return text


def configured(config: dict) -> str:
    overrides = config["config_overrides"]
    return (
        f"TWR-VAE, embedding and hidden size {overrides['embedding_size']}, latent {overrides['latent_size']}, word "
        f"dropout {overrides['word_dropout']:g}, a bag-of-words loss of weight {overrides['bow_loss_weight']:g}, "
        f"{config['max_train_steps']:,} updates of batch {config['per_device_train_batch_size']} at learning rate "
        f"{config['learning_rate']:g}"
    )


def stated_facts(results: dict) -> list[tuple[str, dict]]:
    return [(name, results["facts_kept"][name]) for name in FACTS if results["facts_kept"][name]["count"]]


def wrapped(paragraph: str) -> str:
    """A paragraph or a bullet wrapped as the pages' Markdown is, at 118 characters."""
    bullet = paragraph.startswith("- ")
    return textwrap.fill(paragraph, 118, subsequent_indent="  " if bullet else "", break_on_hyphens=False)


def main_job_summary(run: dict) -> str:
    results = run["test_results"]
    facts = results["facts_kept"]
    weakest_name, weakest = min(stated_facts(results), key=lambda item: item[1]["kept"])
    first = results["examples"]["reconstructions"][0]
    shift = results["examples"]["attribute_shift"]
    how_many = "most" if facts["mean"]["kept"] > 0.5 else "less than half"
    paragraphs = [
        f"The main job trains `--config demo` ({configured(run['config'])}) on E2E: its development split plus its "
        "test split from row 1012 on, with restaurant names replaced by `xname` and `xnear` (E2E's training split is "
        f"not available offline). It then evaluates the model on the first {results['num_sentences']:,} test texts, "
        "which training never sees (nor their meaning representations), and writes everything to `outputs/demo/`. It "
        f"took {ran_on(run)}. What it shows, plainly:",
        f"- Reconstructions keep {how_many} of their input's facts: over the facts these texts state, a "
        f"reconstruction states its input's value {share(facts['mean']['kept'])} of the time, against "
        f"{share(facts['mean']['chance'])} for another input's reconstruction. The weakest is "
        f"{weakest_name.replace('_', ' ')}, kept {share(weakest['kept'])} of the time.",
        f"- BLEU {results['reconstruction_bleu']:.1f} against their own input, "
        f"{results['reconstruction_bleu_other_input']:.1f} against another; "
        f'{share(results["reconstruction_distinct"])} are distinct. The first test text, "{first["input"]}", '
        f'comes back as "{first["output"]}".',
        f"- An attribute vector for {shift['description'].replace('->', 'to')} makes "
        f"{share(shift['states_target_shifted'])} of {shift['num_texts']} texts state the new value, against "
        f"{share(shift['states_target_unshifted'])} unshifted.",
    ]
    return "\n".join(wrapped(text) for text in paragraphs[:1]) + "\n\n" + "\n".join(map(wrapped, paragraphs[1:]))


def main_job_table(run: dict) -> str:
    results = run["test_results"]
    mean = results["facts_kept"]["mean"]
    facts = dict(stated_facts(results))
    kept = [name for name, fact in facts.items() if fact["kept"] >= 0.5 and fact["kept"] >= 2 * fact["chance"]]
    lines = [
        "| `--config demo` | IW-NLL | -ELBO | KL (decoded z) | MI | active units | rec. BLEU | against another input | "
        "rec. distinct | facts kept (chance) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {configured(run['config'])} | {results['iw_nll']:.2f} | {results['elbo_nll']:.2f} | "
        f"{results['kl_decoded']:.2f} | {results['mutual_information']:.2f} | {results['active_units']} | "
        f"{results['reconstruction_bleu']:.2f} | {results['reconstruction_bleu_other_input']:.2f} | "
        f"{results['reconstruction_distinct']:.3f} | {mean['kept']:.3f} ({mean['chance']:.3f}) |",
        "",
        wrapped(
            f"Measured on the first {results['num_sentences']:,} test texts with k = {results['iw_samples']}, seed "
            f"{results['seed']}, weights `{results['weights_sha256'][:12]}`; the job took {ran_on(run)}. A seed fixes "
            "the result on a given CPU; CPUs with other vector units round differently."
        ),
        "",
        "The facts, one by one:",
        "",
        "| fact | inputs stating it | kept | chance (another input) |",
        "|---|---|---|---|",
        *(
            f"| {name.replace('_', ' ')} | {fact['count']:,} | {fact['kept']:.3f} | {fact['chance']:.3f} |"
            if fact["count"]
            else f"| {name.replace('_', ' ')} | 0 (no evaluated text states it) | - | - |"
            for name, fact in ((name, results["facts_kept"][name]) for name in FACTS)
        ),
        "",
        wrapped(
            "Kept at least half of the time and at least twice as often as by chance: "
            + (", ".join(name.replace("_", " ") for name in kept) or "none")
            + ". Not: "
            + (", ".join(name.replace("_", " ") for name in facts if name not in kept) or "none")
            + " (a fact whose chance level is above one half cannot reach twice chance)."
        ),
    ]
    return "\n".join(lines)


def main_job_page(run: dict) -> str:
    results = run["test_results"]
    facts = dict(stated_facts(results))
    mean = results["facts_kept"]["mean"]
    examples = results["examples"]
    half = [name for name, fact in facts.items() if fact["kept"] >= 0.5]
    twice = [name for name, fact in facts.items() if fact["kept"] >= 2 * fact["chance"] and fact["kept"] > 0]

    def names(items):
        return ", ".join(name.replace("_", " ") for name in items) or "none"

    lines = [
        wrapped(
            f"`bash scripts/demo.sh ../shared/data` trains `--config demo` ({configured(run['config'])}), "
            f"delexicalised, on the development split plus test[1012:]. It took {ran_on(run)}. On the first "
            f"{results['num_sentences']:,} test texts, reconstructions keep {share(mean['kept'])} of the stated facts "
            f"against {share(mean['chance'])} by chance, BLEU is {results['reconstruction_bleu']:.1f} against their "
            f"input and {results['reconstruction_bleu_other_input']:.1f} against another input, and "
            f"{share(results['reconstruction_distinct'])} of them are distinct. Against the goal set for it:"
        ),
        "",
        f"| goal (first {results['num_sentences']:,} test texts) | measured |",
        "|---|---|",
        "| each fact kept at least 0.5 of the time | "
        + ", ".join(f"{name.replace('_', ' ')} {fact['kept']:.2f}" for name, fact in facts.items())
        + f"; met by {names(half)} |",
        "| each at least twice chance | "
        + ", ".join(
            f"{name.replace('_', ' ')} {fact['kept']:.2f} against {fact['chance']:.2f}" for name, fact in facts.items()
        )  # fmt: skip
        + f"; met by {names(twice)} |",
        f"| 0.6 or more on average | {mean['kept']:.3f} |",
        f"| reconstructions still distinct | {share(results['reconstruction_distinct'])} distinct |",
        "",
        "Reconstructions of the first five test texts as the model reads them (delexicalised and lower-cased; "
        "greedy\nfrom the posterior mode):",
        "",
        "| input | reconstruction |",
        "|---|---|",
        *(f"| {cell(row['input'])} | {cell(row['output'])} |" for row in examples["reconstructions"][:5]),
        "",
        "Prior samples (greedy, z ~ N(0, I)), the first five:",
        "",
        *(f"- {text}" for text in examples["prior_samples"][:5]),
        "",
        f"Aggregate-posterior samples (greedy, from the {run['config']['aggregate_posterior_components']}-component "
        "mixture), the first five:",
        "",
        *(f"- {text}" for text in examples["aggregate_samples"][:5]),
    ]
    return "\n".join(lines)


TABLE5_COLUMNS = [
    ("bleu_recall_papers", "BLEU-R"), ("bleu_precision_papers", "BLEU-P"), ("bleu_f1_papers", "BLEU-F1"),
    ("bow_average", "BOW-A"), ("bow_extrema", "BOW-E"), ("bow_greedy", "BOW-G"), ("intra_distinct_1", "intra-dist1"),
    ("intra_distinct_2", "intra-dist2"), ("inter_distinct_1", "inter-dist1"), ("inter_distinct_2", "inter-dist2"),
    ("bleu_f1", "BLEU-F1 (sacreBLEU)"), ("train_minutes", "training (min)"),
]  # fmt: skip
TABLE5_ORDER = ("SeqGAN", "CVAE", "DialogWAE-GMP", "iVAE", "TWR-CVAE")
CORPUS_NAMES = {"dailydialog": "DailyDialog", "switchboard": "Switchboard"}


def mean_std(value: float | None, std: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if std is None else f"{value:.3f} ± {std:.3f}"


def table5(run: dict) -> str:
    """One table per corpus: each model's mean ± standard deviation over its seeds."""
    lines = []
    for corpus, models in run["corpora"].items():
        first = next(iter(next(iter(models.values()))["seeds"].values()))
        lines += [
            f"**{CORPUS_NAMES.get(corpus, corpus)}**: {first['num_contexts']} test contexts, 10 responses each; mean "
            "± standard deviation over seeds.",
            "",
            "| model | seeds | " + " | ".join(title for _, title in TABLE5_COLUMNS) + " |",
            "|---|---|" + "---|" * len(TABLE5_COLUMNS),
        ]
        for name in sorted(models, key=lambda n: TABLE5_ORDER.index(n) if n in TABLE5_ORDER else len(TABLE5_ORDER)):
            seeds, means, stds = models[name]["seeds"], models[name]["mean"], models[name]["std"]
            cells = [mean_std(means.get(key), stds.get(key)) for key, _ in TABLE5_COLUMNS]
            lines.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).strip()


def table5_examples(run: dict) -> str:
    """Each corpus's first test contexts with the first responses of every model's seed-1 run."""
    lines = []
    for corpus, models in run["corpora"].items():
        names = [n for n in TABLE5_ORDER if n in models and "1" in models[n]["seeds"]]
        if not names:
            continue
        contexts = models[names[0]]["seeds"]["1"]["examples"]
        for index, example in enumerate(contexts[:2]):
            turns = " / ".join(cell(turn) for turn in example["context"][-2:])
            lines += [
                f"**{CORPUS_NAMES.get(corpus, corpus)}, test context {index + 1}** (last turns): {turns}  ",
                f"Reference: {cell(example['reference'])}",
                "",
                "| model | the first three of its 10 responses (seed 1) |",
                "|---|---|",
            ]
            for name in names:
                responses = models[name]["seeds"]["1"]["examples"][index]["responses"][:3]
                lines.append(f"| {name} | " + "<br>".join(cell(text) or "(empty)" for text in responses) + " |")
            lines.append("")
    return "\n".join(lines).strip()


def render(kind: str) -> str:
    if kind.startswith("table5"):
        run = json.loads(TABLE5.read_text(encoding="utf-8"))
        return table5(run) if kind == "table5" else table5_examples(run)
    if kind.startswith("table "):
        return (BENCHMARK_RESULTS / kind.removeprefix("table ")).read_text(encoding="utf-8").strip()
    if kind.startswith("main job"):
        run = json.loads(MAIN_JOB.read_text(encoding="utf-8"))
        return {"main job summary": main_job_summary, "main job table": main_job_table, "main job page": main_job_page}[
            kind
        ](run)
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    return page(results) if kind == "page" else summary(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Write nothing; exit 1 if a page is out of date.")
    args = parser.parse_args(argv)
    stale = []
    for path, name, kind in PAGES:
        text = path.read_text(encoding="utf-8")
        if not block(name).search(text):
            raise SystemExit(f"{path} has no <!-- {name}:begin --> ... <!-- {name}:end --> block.")
        filled = render(kind)
        new = block(name).sub(lambda match, filled=filled: match.group(1) + filled + "\n" + match.group(2), text)
        if new != text:
            stale.append(path)
            if not args.check:
                atomic_write_text(path, new)
    for source, copy in FIGURES:
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            stale.append(copy)
            if not args.check:
                atomic_write_bytes(copy, source.read_bytes())
    if args.check and stale:
        print(f"out of date with their results files: {', '.join(map(str, stale))}; run scripts/render_results.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
