"""The model card of a published model: `hub/templates/twrvae.md` rendered with huggingface_hub's `ModelCard`.

One template serves every model of the family (TWR-VAE, its -mean/-sum and partial-KL variants, HR-VAE, the vanilla
VAE-RNN) on every corpus: what differs is worked out here from the model's `config.json`, the `training_config.yaml`
that training/train.py saved, and the JSON of training/evaluate.py, and passed to the template as plain values.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_twrvae.configuration_twrvae import PRESETS, TWRVAEConfig
from modeling_twrvae.data.corpora import CORPORA

CARD_TEMPLATE = Path(__file__).resolve().parent / "templates" / "twrvae.md"

CORPUS_NAMES = {
    "ptb": "Penn Treebank",
    "yahoo": "Yahoo Answers",
    "yelp": "Yelp reviews",
    "yelp-sentiment": "Yelp review sentences",
    "e2e": "E2E NLG",
}
# The Hub licence id of a model trained on a corpus: the corpus's own where the Hub knows it, else "other" with the
# corpus's terms as license_name. A model of the user's own data gets the package's licence unless told otherwise.
CORPUS_LICENSES = {
    "e2e": "cc-by-sa-4.0",
    "dailydialog": "cc-by-nc-sa-4.0",
    "ptb": "other",
    "yahoo": "other",
    "yelp": "other",
    "yelp-sentiment": "other",
    "switchboard": "other",
}
DEFAULT_LICENSE = "apache-2.0"


def card_license(corpus: dict, license: str | None) -> dict:
    """`license` (and `license_name`) of the card's metadata: the corpus's terms, or `license` when the user gives
    one, with a warning when it differs from what the corpus allows."""
    derived = CORPUS_LICENSES.get(corpus.get("key"), DEFAULT_LICENSE)
    if license and license != derived and corpus.get("key"):
        warnings.warn(
            f"--license {license}: the model was trained on {corpus['name']}, whose terms are {corpus['license']} "
            f"(the card would say {derived!r}); a model trained on it is bound by them.",
            stacklevel=3,
        )
    chosen = license or derived
    if chosen == "other":
        return {"license": "other", "license_name": re.sub(r"[^a-z0-9]+", "-", corpus["license"].lower()).strip("-")}
    return {"license": chosen}


# The honest numbers first, then the papers' convention, then text quality: (key, name in the card, what it is).
RESULT_METRICS = [
    ("iw_nll", "IW-NLL", "importance-weighted bound on -log p(x) (nats per text), tighter than the ELBO"),
    ("iw_ppl", "IW-PPL", "perplexity of the IW-NLL"),
    ("elbo_nll", "-ELBO", "reconstruction + KL of the decoded latent (nats per text)"),
    ("kl_decoded", "KL of the decoded z", "KL(q(z|x) || N(0, I)) of the latent the decoder reads (nats)"),
    ("mutual_information", "MI", "I(x; z) under the aggregate posterior (nats)"),
    ("active_units", "active units", "latent dimensions with Cov_x E[z_d|x] > 0.01"),
    ("reconstruction_loss", "reconstruction", "E_q[-log p(x|z)] (nats per text)"),
    ("kl_regularizer", "KL regulariser", "the timestep-averaged KL that training minimises (nats)"),
    (
        "paper_nll",
        "paper NLL",
        "the papers' convention, NOT a bound: reconstruction at the posterior mean + KL regulariser",
    ),
    ("paper_ppl", "paper PPL", "the papers' convention, NOT a bound: perplexity of paper NLL"),
    ("reconstruction_bleu", "reconstruction BLEU", "sacreBLEU of greedy reconstructions from the posterior mode"),
    (
        "reconstruction_bleu_other_input",
        "reconstruction BLEU against another input",
        "the same reconstructions scored against a random other input: what BLEU gives without the input's content",
    ),
    ("facts_kept_mean", "E2E facts kept", "share of the input's stated E2E facts that its reconstruction states"),
    ("facts_kept_chance_mean", "E2E facts kept by chance", "the same share for another input's reconstruction"),
    ("prior_distinct_2", "distinct-2 of samples", "distinct bigrams of greedy decodings of prior samples"),
]
# Keys of RESULT_METRICS that go into the card's model-index (the Hub's evaluation results), in this order.
MODEL_INDEX_METRICS = [
    "iw_nll",
    "iw_ppl",
    "elbo_nll",
    "kl_decoded",
    "mutual_information",
    "active_units",
    "paper_nll",
    "paper_ppl",
    "reconstruction_bleu",
]
PAPER_CONVENTION = "the papers' convention, not a bound"

# Fields that tell the models of the family apart (sizes are not among them).
_STRUCTURE = (
    "num_layers",
    "posterior_input",
    "latent_mode",
    "kl_regularizer",
    "kl_timestep_fraction",
    "decoder_input",
    "decoder_init",
    "decoder_latent_input",
    "posterior_mean_batch_norm_gamma",
    "svi_steps",
)


def identify_preset(config: dict) -> str | None:
    """The name of the papers' preset whose structure `config` has, or None for a configuration of one's own."""
    defaults = {name: getattr(TWRVAEConfig, name, None) for name in _STRUCTURE}
    for name in sorted(PRESETS, key=lambda preset: (len(PRESETS[preset]), preset)):
        expected = {**defaults, **{key: value for key, value in PRESETS[name].items() if key in _STRUCTURE}}
        if all(config.get(key, defaults[key]) == value for key, value in expected.items()):
            return name
    return None


def describe_model(config: dict, training_config: dict | None = None) -> dict:
    """Which model of the family `config` is, in words for the card."""
    training_config = training_config or {}
    if config.get("model_type") != TWRVAEConfig.model_type:
        model_type = config.get("model_type", "unknown")
        return {"title": model_type, "model_type": model_type, "preset": None, "tag": model_type, "generic": True}
    cell = config.get("rnn_type", "lstm").upper()
    fraction = config.get("kl_timestep_fraction", 1.0)
    collapse_prone = False
    if config.get("kl_regularizer") == "last" and config.get("posterior_mean_batch_norm_gamma"):
        title, tag = f"BN-VAE (gamma {config['posterior_mean_batch_norm_gamma']:g})", "bn-vae"
        summary = "the VAE-RNN with batch-normalised posterior means, Zhu et al., 2020, a baseline of TWR-VAE's Table 2"
        regularizer = (
            "Only the last posterior is regularised; its mean is batch-normalised with a fixed scale, which bounds the "
            "expected KL from below."
        )
        kl, kl_short = "last timestep only, with a KL lower bound", "KL on the last timestep, bounded below"
    elif config.get("kl_regularizer") == "last" and config.get("svi_steps"):
        title, tag = "SA-VAE", "sa-vae"
        summary = "the semi-amortized VAE-RNN, Kim et al., 2018, a baseline of TWR-VAE's Table 2"
        regularizer = (
            f"Only the last posterior is regularised; the encoder's posterior is refined by {config['svi_steps']} "
            "steps of gradient descent on each sentence's negative ELBO."
        )
        kl, kl_short, collapse_prone = "last timestep only", "KL on the last timestep", True
    elif config.get("kl_regularizer") == "last":
        title, tag = f"VAE-{cell}", "vae-rnn"
        schedule = training_config.get("kl_schedule", "constant")
        if schedule != "constant":
            title += f" with {schedule} KL annealing"
        summary = "the vanilla VAE-RNN of Bowman et al., 2016, the baseline of the TWR-VAE and HR-VAE papers"
        regularizer = "Only the last posterior is regularised, KL(q(z_T|x) || N(0, I)), as in a standard VAE."
        kl, kl_short, collapse_prone = "last timestep only", "KL on the last timestep", True
    else:
        partial = f", KL on the last {fraction:.0%} of timesteps" if fraction < 1 else ""
        if config.get("posterior_input") == "hc":
            title, tag = "HR-VAE", "hr-vae"
            if config.get("decoder_input") == "inputless":
                title += " (inputless decoder)"
            summary = "holistic regularisation, Li et al., INLG 2019; its posteriors read [h_t; c_t] of every layer"
        else:
            title = "TWR-VAE" + {"mean": "-mean", "sum": "-sum"}.get(config.get("latent_mode"), "")
            tag = "twr-vae"
            summary = "timestep-wise regularisation, Li et al., COLING 2020"
        if cell != "LSTM":
            title += f" ({cell})"
        title += partial
        regularizer = (
            "Unlike a vanilla VAE, which regularises only the last posterior, it regularises "
            + (f"the last {fraction:.0%} of the timesteps" if fraction < 1 else "every timestep")
            + ", (1/T) sum_t KL(q(z_t|x_1..t) || N(0, I)), which keeps z informative (no posterior collapse)."
        )
        kl = "timestep-wise: " + (f"the last {fraction:.0%} of timesteps" if fraction < 1 else "every timestep")
        kl += ", averaged"
        kl_short = "timestep-wise KL regulariser"
    latent_mode = {
        "last": "z_T, the posterior of the last token",
        "mean": "the mean of z_1..z_T",
        "sum": "the sum of z_1..z_T",
    }.get(config.get("latent_mode"), str(config.get("latent_mode")))
    decoder = (
        "inputless: reads only z (its previous word is always `<unk>`)"
        if config.get("decoder_input") == "inputless"
        else "reads [previous word; z] at every step"
    )
    decoder += "; z is cut into its initial state" if config.get("decoder_init") == "split" else "; initial state W z"
    if config.get("decoder_latent_input") == "last_layer":
        decoder += "; each step reads the last layer's slice of z"
    if config.get("word_dropout"):
        decoder += f"; word dropout {config['word_dropout']}"
    return {
        "title": title,
        "tag": tag,
        "model_type": config.get("model_type"),
        "preset": identify_preset(config),
        "summary": summary,
        "regularizer": regularizer,
        "kl": kl,
        "kl_short": kl_short,
        "collapse_prone": collapse_prone,
        "cell": cell,
        "num_layers": config.get("num_layers"),
        "embedding_size": config.get("embedding_size"),
        "hidden_size": config.get("hidden_size"),
        "latent_size": config.get("latent_size"),
        "latent_mode": latent_mode,
        "decoder": decoder,
        "vocab_size": config.get("vocab_size"),
        "generic": False,
    }


def describe_corpus(
    training_config: dict | None, corpora: dict = CORPORA, names: dict = CORPUS_NAMES, data: str = "text"
) -> dict:
    """The training corpus in words: one of `corpora` known by name, or the user's own `data`."""
    training_config = training_config or {}
    key = training_config.get("dataset")
    if key in corpora:
        corpus = corpora[key]
        hub = getattr(corpus, "hub", None)
        return {
            "key": key,
            "name": names.get(key, key),
            "description": corpus.description + ".",
            "license": corpus.license,
            "hub": hub[0] if hub else None,
        }
    source = training_config.get("dataset_name") or training_config.get("train_file")
    return {
        "key": None,
        "name": f"`{source}`" if source else f"user-provided {data}",
        "description": f"{data.capitalize()} provided by the model's author.",
        "license": "see the data's own terms",
        "hub": training_config.get("dataset_name"),
    }


def describe_training(
    training_config: dict | None,
    validation: dict | None,
    corpus: dict,
    config: dict,
    unit: str = "text",
    dropout_row: bool = True,
) -> dict:
    """The training data and settings in words, counting `unit`s (texts, responses). `dropout_row`: list the
    language model's dropouts (the dialogue card gives its own in the model table)."""
    units = unit + "s"
    if not training_config:
        return {"data": "", "rows": [], "validation": None, "small_data": None}
    t = training_config
    if t.get("train_file"):
        source = f"the file `{Path(t['train_file']).name}`" + (f" ({corpus['name']})" if corpus["key"] else "")
    elif t.get("dataset_name"):
        source = f"the Hub dataset `{t['dataset_name']}` (`{t.get('train_split', 'train')}` split)"
    else:
        source = f"{corpus['name']}'s `{t.get('train_split', 'train')}` split"
    held_out = validation.get("num_sentences") if validation else None
    if t.get("validation_split_percentage"):
        where = f"{_number(t['validation_split_percentage'])}% of it held out for model selection"
        data = f"Trained on {source}, {where}" + (f" ({held_out:,} {units})." if held_out else ".")
    else:
        check = t.get("validation_file") or f"the `{t.get('validation_split', 'validation')}` split"
        data = f"Trained on {source}; model selection on {check}."
    data += f" {units.capitalize()} longer than {t.get('max_length')} tokens keep their first tokens and `<eos>`."
    tokenizer = t.get("tokenizer_name") or "trained on the training text only"
    data += f" Word-level tokenizer: {tokenizer}."

    steps = t.get("max_train_steps")
    budget = f"{steps:,} updates" if steps else f"{t.get('num_train_epochs')} epochs"
    if t.get("early_stopping_patience"):
        budget += f", early stopping after {t['early_stopping_patience']} validations without improvement"
    if t.get("eval_steps"):
        budget += f"; validation every {t['eval_steps']} updates"
    batch = t.get("per_device_train_batch_size", 0) * t.get("gradient_accumulation_steps", 1)
    kl_weight = f"{t.get('kl_schedule', 'constant')}, weight {t.get('kl_weight', 1.0)}"
    if t.get("kl_schedule", "constant") != "constant":
        start = f" from {t['kl_start_weight']}" if t.get("kl_start_weight") else ""
        kl_weight += f"{start} over {t.get('kl_anneal_steps')} updates"
    if t.get("free_bits"):
        kl_weight += f", free bits {t['free_bits']}"
    rows = [
        (
            "optimiser",
            f"Adam, learning rate {t.get('learning_rate')}, weight decay {t.get('weight_decay')}, "
            f"eps {t.get('adam_epsilon')}, {t.get('lr_scheduler_type', 'constant')} schedule",
        ),
        ("batch size", f"{batch} {units} per process"),
        ("budget", budget),
        ("KL weight", kl_weight),
        ("loss", f"{t.get('loss_reduction', 'mean')} over the {units} of an update"),
        ("gradient clipping", str(t.get("max_grad_norm") or "none")),
        ("seed", str(t.get("seed"))),
    ]
    if dropout_row:
        dropouts = (
            f"{config.get('dropout')} / {config.get('decoder_output_dropout', 0.0)} / {config.get('word_dropout', 0.0)}"
        )
        rows.insert(4, ("dropout: embeddings / decoder output / words", dropouts))
    best = None
    if validation and t.get("metric_for_best_model") == "reconstruction_loss":
        best = (
            f"The weights are those of the best validation reconstruction loss (chosen for reconstructing and editing "
            f"sentences, not likelihood): update {validation.get('step')}, reconstruction "
            f"{validation['reconstruction_loss']:.2f} nats per {unit}, KL {validation['kl_decoded']:.2f}, -ELBO "
            f"{validation['elbo_nll']:.2f} on {validation.get('num_sentences', '?'):,} validation {units}."
        )
    elif validation and "elbo_nll" in validation:
        measured = (
            f"update {validation.get('step')}, -ELBO {validation['elbo_nll']:.2f} nats per {unit} (reconstruction "
            f"{validation['reconstruction_loss']:.2f} + KL {validation['kl_decoded']:.2f}) on "
            f"{validation.get('num_sentences', '?'):,} validation {units}"
        )
        if number_of_validations(t) > 1:
            best = f"The weights are those of the best validation -ELBO: {measured}."
        else:
            best = f"The run was validated once, after its last update, so the weights are its final ones: {measured}."
    small = None
    if corpus["key"] and (t.get("train_file") or t.get("train_split", "train") != "train"):
        small = (
            f"This model saw only {source} (the full training split of {corpus['name']} was not available), far "
            "less text than the papers trained on. Its numbers are not comparable with the papers' tables, and "
            "its vocabulary and style are those of this small sample: expect many `<unk>` on other text."
        )
    split = str(t.get("train_split") or "")
    if "test" in split:  # the main job's E2E models train on part of the test split
        small = (small + " " if small else "") + (
            f"It also trained on part of the test split (`{split}`): evaluate it only on test texts outside that "
            "part (the card's results are), and do not compare it with numbers measured on the whole test split."
        )
    return {"data": data, "rows": rows, "validation": best, "small_data": small}


def number_of_validations(training_config: dict) -> int:
    """How many validations training/train.py ran: every `eval_steps` updates and after the last, or once an epoch
    (early stopping can end a run before; what counts here is whether there was a choice of weights at all)."""
    steps, every = training_config.get("max_train_steps"), training_config.get("eval_steps")
    if steps and every:
        return steps // every + (1 if steps % every else 0)
    return int(training_config.get("num_train_epochs") or 1) if not every else 2


def describe_results(results: dict | None, config: dict, corpus: dict, file_name: str, data: str | None) -> dict | None:
    if not results:
        return None
    rows = [
        {"name": name, "value": _format(results[key]), "what": what.replace("|", "\\|")}
        for key, name, what in RESULT_METRICS
        if results.get(key) is not None
    ]
    kl, units, mi = results.get("kl_decoded"), results.get("active_units"), results.get("mutual_information")
    latent = config.get("latent_size")
    if kl is None or units is None:
        collapse = ""
    elif units == 0 or kl < 0.1:
        collapse = (
            f"Here the KL of the decoded latent is {kl:.2f} nats, I(x; z) {_format(mi)} nats, and {units} of "
            f"{latent} latent dimensions are active: **this model has collapsed**. Its decoder ignores z, so "
            "reconstructions and interpolations carry (almost) nothing of the input."
        )
    else:
        collapse = (
            f"Here the KL of the decoded latent is {kl:.2f} nats, I(x; z) {_format(mi)} nats, and {units} of "
            f"{latent} latent dimensions are active: z carries information about the text. That alone does not say "
            'what a reconstruction keeps: "What the latent does, shown" above does.'
        )
    return {
        "data": data or _data_label(results.get("data", "")),
        "num_sentences": f"{results['num_sentences']:,}",
        "num_predicted_tokens": f"{results['num_predicted_tokens']:,}",
        "iw_samples": results.get("iw_samples"),
        "seed": results.get("seed"),
        "rows": rows,
        "file": file_name,
        "collapse": collapse,
        "keeps": what_reconstructions_keep(results),
        "facts": facts_rows(results.get("facts_kept")),
        "examples": results.get("examples") or {},
        "interpolation": interpolation_rows(results),
        "sentiment": sentiment_rows(results.get("sentiment")),
        "headline": headline(results),
    }


def headline(results: dict) -> str:
    """What the model does and does not do, in two sentences from the measured numbers, for the card's top."""
    own, other = results.get("reconstruction_bleu"), results.get("reconstruction_bleu_other_input")
    if own is None or other is None:
        return ""
    if own < 10:
        return (
            f"This model does not reconstruct its inputs (BLEU {own:.1f} against the input, {other:.1f} against "
            "another): it writes text of its corpus's style, and its latent carries little of a given text."
        )
    text = (
        f"This model reconstructs its inputs approximately (BLEU {own:.1f} against the input, {other:.1f} against "
        f"another; {_share(results.get('reconstruction_exact_match'))} exact), samples and interpolates."
    )
    sentiment = results.get("sentiment")
    if sentiment:
        point = sentiment["transfer"]["operating_point"]
        text += (
            f" Its `positive` vector changes a sentence's sentiment ({_share(point['accuracy'])} judged transferred at "
            f"strength {point['strength']:g}) but keeps little of its content (BLEU {point['content_bleu']:.1f}): it "
            "is not a style-transfer system."
        )
    return text


def sentiment_rows(section: dict | None) -> dict | None:
    """evaluate.py's sentiment section in the card's words and rounded numbers."""
    if not section:
        return None
    point = section["transfer"]["operating_point"]
    return {
        "judge": f"{section['judge']['model']}; it gives {_share(section['judge']['test_accuracy'])} of the test "
        "sentences their label",
        "kept": _share(section["reconstruction_label_kept"]),
        "vector": section["vector"]["source"],
        "transfer": [
            {"strength": f"{r['strength']:g}", "accuracy": _share(r["accuracy"]), "bleu": f"{r['content_bleu']:.1f}"}
            for r in section["transfer"]["rows"]
        ],
        "point": {
            "strength": f"{point['strength']:g}",
            "accuracy": _share(point["accuracy"]),
            "bleu": f"{point['content_bleu']:.1f}",
            "rule": point["rule"],
        },  # fmt: skip
        "samples": [
            {
                "name": name.replace("_", " "),
                "count": f"{row['num_samples']:,}",
                "distinct_2": f"{row['distinct_2']:.3f}",
                "copies": _share(row["copies_of_training"]),
                "fluency": f"{row['fluency_perplexity']:.1f}",
            }
            for name, row in section["samples"].items()
        ],  # fmt: skip
        "examples": section.get("examples") or [],
    }


def interpolation_rows(results: dict) -> list[dict]:
    path = ((results.get("examples") or {}).get("interpolation") or {}).get("path") or []
    alphas = (results.get("interpolation") or {}).get("alphas") or []
    return [{"alpha": f"{alpha:.1f}", "text": text} for alpha, text in zip(alphas, path, strict=False)]


def facts_rows(facts: dict | None) -> list[dict]:
    if not facts:
        return []
    return [
        {"name": "mean" if fact == "mean" else fact.replace("_", " "), "count": f"{row['count']:,}",
         "kept": _share(row["kept"]), "chance": _share(row["chance"])}
        for fact, row in facts.items()
    ]  # fmt: skip


def what_reconstructions_keep(results: dict) -> list[str]:
    """Plain sentences on what the reconstructions keep and lose, from the measured numbers only."""
    sentences = []
    own, other = results.get("reconstruction_bleu"), results.get("reconstruction_bleu_other_input")
    distinct = results.get("reconstruction_distinct")
    if own is not None and other is not None:
        closer = (
            "closer to their own input than to another"
            if own > other
            else "no closer to their own input than to another"
        )
        sentences.append(
            f"Reconstructions are {closer}: BLEU {own:.1f} against their input, {other:.1f} against a random other "
            f"input. An exact copy of the input is rare ({_share(results.get('reconstruction_exact_match'))} of texts)"
            + (f", and {_share(distinct)} of the reconstructions are distinct." if distinct is not None else ".")
        )
        if own < 10:
            sentences.append(
                f"At a BLEU of {own:.1f}, a reconstruction is mostly another text of the corpus, sharing a few words "
                "with its input: this model does not reconstruct its inputs."
            )
        if distinct is not None and distinct < 0.5:
            sentences.append(f"Only {_share(distinct)} of the reconstructions are distinct: many inputs share one.")
    facts = results.get("facts_kept")
    if facts:
        measured = {fact: row for fact, row in facts.items() if fact != "mean" and row["count"]}
        strong = [fact for fact, row in measured.items() if row["kept"] >= 0.5 and row["kept"] >= 2 * row["chance"]]
        weak = [fact for fact in measured if fact not in strong]
        mean = facts["mean"]
        sentences.append(
            f"Of the E2E facts its inputs state, a reconstruction states the same value {_share(mean['kept'])} of the "
            f"time on average, against {_share(mean['chance'])} for another input's reconstruction (chance)."
        )
        if strong:
            sentences.append(f"It keeps {_list(strong)} reliably (at least half the time and twice chance).")
        if weak:
            rows = "; ".join(
                f"{f.replace('_', ' ')} {_share(measured[f]['kept'])} against {_share(measured[f]['chance'])} by chance"
                for f in weak
            )
            sentences.append(f"It does not reliably keep {_list(weak)} ({rows}).")
    shift = (results.get("examples") or {}).get("attribute_shift")
    if shift:
        line = (
            f"An attribute vector ({shift['description']}, the mean latent of the evaluated texts with it minus that "
            f"of those without, added at strength {shift['strength']}) makes {_share(shift['states_target_shifted'])} "
            f"of {shift['num_texts']} reconstructions state it, against {_share(shift['states_target_unshifted'])} "
            "without the shift"
        )
        if shift.get("other_facts_kept_shifted") is not None:
            line += (
                f"; their other facts survive {_share(shift['other_facts_kept_shifted'])} of the time, against "
                f"{_share(shift['other_facts_kept_unshifted'])} unshifted"
            )
        sentences.append(line + ".")
    if results.get("delexicalized"):
        sentences.append(
            "Restaurant names and landmarks are not modelled: the model reads and writes the placeholders `xname` "
            "and `xnear` in their place (trained on delexicalised E2E)."
        )
    return sentences


def _share(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def _list(facts: list[str]) -> str:
    names = [fact.replace("_", " ") for fact in facts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def eval_results_for_model_index(results: dict, corpus: dict, data: str | None) -> list[EvalResult]:
    """The model-index entries (Hub evaluation results) of `results`, the JSON of training/evaluate.py."""
    name, _, split = results.get("data", "").partition(":")
    dataset_type = corpus["hub"] or corpus["key"] or name or "text"
    k = results.get("iw_samples")
    entries = []
    for key in MODEL_INDEX_METRICS:
        value = results.get(key)
        if value is None:
            continue
        title = dict((metric, title) for metric, title, _ in RESULT_METRICS)[key]
        if key.startswith("paper_"):
            title += f" ({PAPER_CONVENTION})"
        elif key.startswith("iw_"):
            title += f" (k={k})"
        entries.append(
            EvalResult(
                task_type="text-generation",
                task_name="Text modelling (variational autoencoder)",
                dataset_type=dataset_type,
                dataset_name=corpus["name"].strip("`"),
                dataset_split=split or None,
                metric_type=key,
                metric_name=title,
                metric_value=round(value, 4) if isinstance(value, float) else value,
                metric_config=f"k={k}" if key.startswith("iw_") else None,
                metric_args={"num_texts": results.get("num_sentences")},
            )
        )
    return entries


def render_model_card(
    repo_id: str,
    config: dict,
    *,
    training_config: dict | None = None,
    validation_results: dict | None = None,
    eval_results: dict | None = None,
    eval_results_file: str = "test_results.json",
    eval_data_description: str | None = None,
    num_parameters: int | None = None,
    example_texts: list[str] | None = None,
    has_training_curves: bool = False,
    license: str | None = None,
    template_path: str | Path = CARD_TEMPLATE,
) -> ModelCard:
    """The card of a model, from its config.json, training_config.yaml and evaluation JSON (any may be missing).
    `license`: the Hub licence id; default: the training corpus's (`card_license`)."""
    model = describe_model(config, training_config)
    model["parameters"] = f"{num_parameters:,}" if num_parameters else "unknown"
    corpus = describe_corpus(training_config)
    training = describe_training(training_config, validation_results, corpus, config)
    results = describe_results(eval_results, config, corpus, eval_results_file, eval_data_description)
    model_name = repo_id.split("/")[-1]
    tags = ["text-vae", "variational-autoencoder", model["tag"], "posterior-collapse", "text-generation"]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        # the Hub task whose pipeline loads this model: `pipeline("feature-extraction", model=..., trust_remote_code=True)`
        # gives the posterior means; there is no causal LM for "text-generation" to load
        pipeline_tag="feature-extraction",
        tags=list(dict.fromkeys(tags)),
        datasets=[corpus["hub"]] if corpus["hub"] else None,
        language=["en"],
        **card_license(corpus, license),
        eval_results=eval_results_for_model_index(eval_results, corpus, eval_data_description)
        if eval_results
        else None,
    )
    # at most 12 words each: a Yahoo answer is a page long
    texts = [" ".join(text.split()[:12]) for text in list(example_texts or [])[:2]]
    texts += ["the company said it would report a loss", "the restaurant is cheap and near the river"][len(texts) :]
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        model=model,
        corpus=corpus,
        training=training,
        results=results,
        curves=has_training_curves,
        # Python string literals in double quotes (json.dumps writes valid ones), as ruff formats them.
        usage={
            "repo": json.dumps(repo_id),
            "text_a": json.dumps(texts[0], ensure_ascii=False),
            "text_b": json.dumps(texts[1], ensure_ascii=False),
        },
    )


def _data_label(data: str) -> str:
    name, _, split = data.partition(":")
    if name in CORPORA and split:
        return f"{CORPUS_NAMES.get(name, name)}'s `{split}` split"
    return f"`{data}`"


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"


__all__ = ["CARD_TEMPLATE", "card_license", "describe_model", "identify_preset", "render_model_card"]
