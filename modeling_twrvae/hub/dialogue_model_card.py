"""The model card of a published dialogue model (`model_type` `twrcvae`): `hub/templates/twrcvae.md` rendered with
huggingface_hub's `ModelCard`, from the model's `config.json`, `training_config.yaml` and the JSON of
training/evaluate.py (any may be missing). The training settings are described as for the language model."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_twrvae.configuration_twrcvae import CVAE_PRESETS, TWRCVAEConfig
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA
from modeling_twrvae.hub.model_card import _format, card_license, describe_corpus, describe_training

CARD_TEMPLATE = Path(__file__).resolve().parent / "templates" / "twrcvae.md"
CORPUS_NAMES = {"dailydialog": "DailyDialog", "switchboard": "Switchboard"}

# (key, name in the card, what it is): the papers' Table 5 columns first, then the likelihood.
RESULT_METRICS = [
    (
        "bleu_recall_papers",
        "BLEU-R (papers')",
        "max over a context's responses of nltk sentence BLEU (n <= 3, method 7)",
    ),
    ("bleu_precision_papers", "BLEU-P (papers')", "mean over a context's responses of the same"),
    ("bleu_f1_papers", "BLEU-F1 (papers')", "harmonic mean of the two: Table 5's BLEU convention"),
    ("bleu_recall", "BLEU-R", "max of sacrebleu sentence BLEU (n <= 4, exp smoothing), stricter"),
    ("bleu_precision", "BLEU-P", "mean of the same"),
    ("bleu_f1", "BLEU-F1", "harmonic mean of the two"),
    ("bow_average", "BOW-A", "cosine of mean word vectors, max over responses"),
    ("bow_extrema", "BOW-E", "cosine of extreme word-vector values, max over responses"),
    ("bow_greedy", "BOW-G", "greedy word-vector matching, max over responses"),
    ("intra_distinct_1", "intra-dist1", "distinct unigrams within a response"),
    ("intra_distinct_2", "intra-dist2", "distinct bigrams within a response"),
    ("inter_distinct_1", "inter-dist1", "distinct unigrams across a context's responses"),
    ("inter_distinct_2", "inter-dist2", "distinct bigrams across a context's responses"),
    ("elbo_nll", "-ELBO", "reconstruction + KL of the decoded latent against p(z|c) (nats per response)"),
    ("elbo_ppl", "PPL", "exp(-ELBO total / predicted tokens)"),
    ("kl_decoded", "KL of the decoded z", "KL(q(z|x,c) || p(z|c)) of the latent the decoder reads (nats)"),
]
MODEL_INDEX_METRICS = ["bleu_f1_papers", "bleu_f1", "bow_average", "inter_distinct_2", "elbo_nll", "kl_decoded"]
# A KL of the decoded latent below this (nats) means q(z|x,c) is p(z|c): the model ignores z.
COLLAPSED_KL = 0.1


def identify_preset(config: dict) -> str | None:
    """The preset whose regulariser and losses `config` has (sizes aside), or None."""
    for name, values in CVAE_PRESETS.items():
        expected = {
            "kl_regularizer": values.get("kl_regularizer", TWRCVAEConfig.kl_regularizer),
            "bow_loss_weight": values.get("bow_loss_weight", TWRCVAEConfig.bow_loss_weight),
        }
        if all(config.get(key) == value for key, value in expected.items()):
            return name
    return None


def describe_model(config: dict) -> dict:
    timestep_wise = config.get("kl_regularizer") == "timestep_wise"
    if timestep_wise:
        title = "TWR-VAE for dialogue (conditional)"
        regularizer = (
            "Its timestep-wise regulariser runs over the context encoder's states c_1..c_J: "
            "(1/J) sum_j KL(q(z_j | x, c_j) || p(z_j | c_j)), over each dialogue's own J context utterances "
            "(TWR-VAE, Li et al., COLING 2020, section 4.2)."
        )
        kl = "timestep-wise: every context step, averaged over the dialogue's J"
    else:
        title = "CVAE for dialogue (Zhao et al., 2017)"
        regularizer = "Only the last context step is regularised, KL(q(z | x, c_J) || p(z | c_J)), as Zhao et al."
        kl = "last context step only"
    bow = f"weight {config['bow_loss_weight']}" if config.get("bow_loss_weight") else "none"
    dropout = f"{config.get('dropout', 0.0)} / {config.get('context_dropout', 0.0)} / {config.get('word_dropout', 0.0)}"
    return {
        "title": title,
        "tag": "twr-cvae" if timestep_wise else "cvae",
        "model_type": config.get("model_type"),
        "preset": identify_preset(config),
        "regularizer": regularizer,
        "kl": kl,
        "bow": bow,
        "dropout": dropout,
        **{
            name: config.get(name)
            for name in (
                "embedding_size",
                "utterance_hidden_size",
                "context_hidden_size",
                "decoder_hidden_size",
                "latent_size",
                "prior_hidden_size",
                "context_window",
                "vocab_size",
            )
        },
    }


def describe_results(results: dict | None, file_name: str) -> dict | None:
    if not results:
        return None
    rows = [
        {"name": name, "value": _format(results[key]), "what": what.replace("|", "\\|")}
        for key, name, what in RESULT_METRICS
        if results.get(key) is not None
    ]
    kl = results.get("kl_decoded")
    collapse = ""
    if kl is not None:
        if kl < COLLAPSED_KL:
            collapse = (
                f"**This model has collapsed:** the KL of its decoded latent is {kl:.3f} nats, so its responses to a "
                "context hardly depend on z."
            )
        else:
            collapse = (
                f"This model has not collapsed: the KL of its decoded latent is {kl:.2f} nats, and its responses to "
                f"a context differ (inter-distinct-2 {results.get('inter_distinct_2', float('nan')):.2f})."
            )
    example = ""
    examples = results.get("examples") or []
    if examples:
        first = examples[0]
        lines = [f"context:   {turn}" for turn in first.get("context", [])]
        lines.append(f"reference: {first.get('reference', '')}")
        lines += [f"response:  {text}" for text in first.get("responses", [])[:5]]
        example = "\n".join(lines)
    data = results.get("data", "")
    name, _, split = data.partition(":")
    label = f"{CORPUS_NAMES.get(name, name)}'s `{split}` split" if split else f"`{data}`"
    return {
        "rows": rows,
        "data": label,
        "num_contexts": f"{results.get('num_contexts', 0):,}",
        "num_responses": results.get("num_responses"),
        "seed": results.get("seed"),
        "collapse": collapse,
        "example": example,
        "file": file_name,
    }


def eval_results_for_model_index(results: dict, corpus: dict) -> list[EvalResult]:
    data = results.get("data", "")
    split = data.partition(":")[2] or "test"
    return [
        EvalResult(
            task_type="text-generation",
            dataset_type=corpus["key"] or "custom",
            dataset_name=corpus["name"],
            dataset_split=split,
            metric_type=key,
            metric_name=next(name for k, name, _ in RESULT_METRICS if k == key),
            metric_value=round(float(results[key]), 4),
        )
        for key in MODEL_INDEX_METRICS
        if results.get(key) is not None
    ]


def render_dialogue_model_card(
    repo_id: str,
    config: dict,
    *,
    training_config: dict | None = None,
    validation_results: dict | None = None,
    eval_results: dict | None = None,
    eval_results_file: str = "test_results.json",
    num_parameters: int | None = None,
    example_contexts: list[list[str]] | None = None,
    has_training_curves: bool = False,
    license: str | None = None,
    template_path: str | Path = CARD_TEMPLATE,
) -> ModelCard:
    """The card of a dialogue model, from its config.json, training_config.yaml and evaluation JSON."""
    model = describe_model(config)
    model["parameters"] = f"{num_parameters:,}" if num_parameters else "unknown"
    corpus = describe_corpus(training_config, DIALOGUE_CORPORA, CORPUS_NAMES, data="dialogues")
    training = describe_training(
        training_config, validation_results, corpus, config, unit="response", dropout_row=False
    )
    results = describe_results(eval_results, eval_results_file)
    model_name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        # no Hub task's pipeline loads a conditional VAE (there is no causal LM for "text-generation"): none is named
        pipeline_tag=None,
        tags=["dialogue", "conditional-variational-autoencoder", model["tag"], "response-generation"],
        language=["en"],
        **card_license(corpus, license),
        eval_results=eval_results_for_model_index(eval_results, corpus) if eval_results else None,
    )
    turns = [turn for context in (example_contexts or []) for turn in context][-2:]
    turns = ["hello , how are you ?", "fine , thanks . and you ?"][: 2 - len(turns)] + turns
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        model=model,
        corpus=corpus,
        training=training,
        results=results,
        curves=has_training_curves,
        usage={
            "repo": json.dumps(repo_id),
            "turn_a": json.dumps(" ".join(turns[0].split()[:15]), ensure_ascii=False),
            "turn_b": json.dumps(" ".join(turns[1].split()[:15]), ensure_ascii=False),
        },
    )


__all__ = ["CARD_TEMPLATE", "describe_model", "identify_preset", "render_dialogue_model_card"]
