"""The twrvae demo page: a Gradio app laid out as a Hugging Face Space.

    python demo/app.py                                   # the README main job's model, outputs/demo
    TWRVAE_MODEL=user/my-twrvae python demo/app.py       # any model folder or Hub repo id (the cache when offline)

Tabs: sample from the prior or the aggregate posterior, reconstruct a sentence, interpolate between two sentences, a
2-D PCA map of posterior means, and attribute shifts and analogies (latent arithmetic). The model goes through the
"text-vae" pipeline: this package's own when it is installed, else
the copy saved with the model (`trust_remote_code=True`), so a Space needs only the packages of requirements.txt.
`TWRVAE_EVAL_FILE` (a text a line) sets the evaluation set of the latent map; by default it is the test split of
the corpus named in the model's training_config.yaml, where that corpus can be read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo that may run offline

import gradio as gr
import torch
from transformers import pipeline

APP_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = APP_DIR.parent / "outputs" / "demo"
MAP_LIMIT = 300  # sentences of the evaluation set on the latent map
COLLAPSE_PROBE = 16  # sentences (or prior samples) decoded to look for posterior collapse
DECODINGS = ["greedy", "top-p sampling", "beam search"]
# where the Sample tab's latents come from (model.sample's `sampler`): the prior, or the fitted aggregate posterior
SAMPLERS = {"prior N(0, I)": "prior", "aggregate posterior": "aggregate"}


def load_pipeline(model: str | os.PathLike, device: str | None = None):
    """The text-vae pipeline: this package's class where it is installed, else the model's saved copy."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        from modeling_twrvae.pipeline_twrvae import TEXT_VAE_TASK, TextVAEPipeline
    except ImportError:
        return pipeline("text-vae", model=str(model), trust_remote_code=True, device=device)
    return pipeline(TEXT_VAE_TASK, model=str(model), pipeline_class=TextVAEPipeline, device=device)


class DemoApp:
    """What the page does, as plain methods (the tests call them directly); each returns a message for the page
    instead of raising, so that bad input never shows a stack trace."""

    def __init__(self, vae, evaluation_texts: list[str] | None = None, evaluation_error: str | None = None):
        self.vae = vae
        # The pipeline's own module has the error class, whether it came from this package or from remote code.
        self.input_error = sys.modules[type(vae).__module__].TextInputError
        self.evaluation_texts = evaluation_texts
        self.evaluation_error = evaluation_error
        self.collapse = self.check_collapse()

    @classmethod
    def from_env(cls) -> DemoApp:
        model = os.environ.get("TWRVAE_MODEL") or DEFAULT_MODEL
        if not os.environ.get("TWRVAE_MODEL") and not DEFAULT_MODEL.is_dir():
            raise SystemExit(
                f"{DEFAULT_MODEL} does not exist: run the README's main job (bash scripts/demo.sh ../shared/data) "
                "or set TWRVAE_MODEL to a model folder or Hub repo id."
            )
        texts, error = load_evaluation_texts(model)
        return cls(load_pipeline(model), texts, error)

    def _failure(self, action: str, error: Exception) -> str:
        if isinstance(error, (self.input_error, ValueError)):
            return f"⚠️ {error}"
        return f"⚠️ Could not {action}: {type(error).__name__}: {error}"

    def check_collapse(self) -> dict:
        """Decode the evaluation sentences (or prior samples) greedily: one text for all means a collapsed model."""
        model, tokenizer = self.vae.model, self.vae.tokenizer
        if self.evaluation_texts:
            probe = self.evaluation_texts[:COLLAPSE_PROBE]
            texts = model.reconstruct(probe, tokenizer, max_new_tokens=30)
            what = f"{len(probe)} sentences of the evaluation set"
        else:
            generator = torch.Generator(device=model.device).manual_seed(0)
            texts = model.sample(COLLAPSE_PROBE, tokenizer, generator=generator, max_new_tokens=30)
            what = f"{COLLAPSE_PROBE} latents drawn from the prior"
        distinct = len(set(texts))
        return {"collapsed": distinct == 1, "distinct": distinct, "probe": what, "text": texts[0]}

    def banner(self) -> str:
        name = self.vae.model.name_or_path or "the model"
        config = self.vae.model.config
        head = (
            f"**Model:** `{name}` — latent size {config.latent_size}, {config.rnn_type.upper()} "
            f"{config.hidden_size}, vocabulary {config.vocab_size}."
        )
        if self.collapse["collapsed"]:
            return (
                f"{head}\n\n⚠️ **This model has collapsed**: the {self.collapse['probe']} all decode to the same "
                f"text (“{self.collapse['text']}”). Its decoder ignores the latent z, so reconstructions, samples "
                "and interpolations will not depend on the input."
            )
        return (
            f"{head}\n\nThe latent is in use: the {self.collapse['probe']} decode to {self.collapse['distinct']} "
            "different texts."
        )

    def sample(self, num_samples=5, temperature=1.0, decoding="greedy", top_p=0.9, num_beams=4, seed=0,
               max_new_tokens=40, sampler="prior") -> tuple[str, str]:  # fmt: skip
        """Samples of the prior or of the aggregate posterior (`sampler`, a key or value of SAMPLERS), one a line,
        and a message."""
        sampler = SAMPLERS.get(sampler, sampler)
        try:
            options = {"max_new_tokens": int(max_new_tokens)}
            if decoding == "top-p sampling":
                options.update(do_sample=True, top_p=float(top_p))
            elif decoding == "beam search":
                options["num_beams"] = int(num_beams)
            texts = self.vae.sample(
                int(num_samples), temperature=float(temperature), seed=int(seed), sampler=sampler, **options
            )
        except Exception as error:
            return "", self._failure("sample", error)
        source = "prior" if sampler == "prior" else "aggregate posterior"
        return "\n".join(texts), f"{len(texts)} samples, {source} temperature {float(temperature):g}, {decoding}."

    def reconstruct(self, text: str, max_new_tokens=40) -> tuple[str, str]:
        try:
            output = self.vae(text, max_new_tokens=int(max_new_tokens))
        except Exception as error:
            return "", self._failure("reconstruct", error)
        return output["reconstruction"], "Greedy decoding of the posterior mode."

    def interpolate(self, text_a: str, text_b: str, steps=11, method="slerp", max_new_tokens=40):
        """The path as table rows, the slider set to its middle, the text there, the path (state) and a message."""
        try:
            path = self.vae.interpolate(text_a, text_b, steps=int(steps), method=method,
                                        max_new_tokens=int(max_new_tokens))  # fmt: skip
        except Exception as error:
            return [], gr.Slider(maximum=1, value=0), "", [], self._failure("interpolate", error)
        rows = [[f"{point['alpha']:.2f}", point["text"]] for point in path]
        middle = len(path) // 2
        slider = gr.Slider(minimum=0, maximum=len(path) - 1, value=middle, step=1)
        return rows, slider, self.point(middle, path), path, f"{len(path)} points, {method}."

    @staticmethod
    def point(index, path) -> str:
        if not path:
            return ""
        point = path[min(max(int(index), 0), len(path) - 1)]
        return f"alpha = {point['alpha']:.2f}: {point['text']}"

    def latent_map(self, source: str, pasted: str):
        """A matplotlib figure of the first two principal components of the posterior means, and a message."""
        if source == "evaluation set":
            if not self.evaluation_texts:
                return None, f"⚠️ No evaluation set: {self.evaluation_error or 'set TWRVAE_EVAL_FILE.'}"
            texts = self.evaluation_texts[:MAP_LIMIT]
        else:
            texts = [line.strip() for line in (pasted or "").splitlines() if line.strip()]
        if len(texts) < 3:
            return None, "⚠️ The map needs at least 3 sentences, one a line."
        try:
            means = self.vae.encode(texts)
        except Exception as error:
            return None, self._failure("encode", error)
        points, explained = principal_components(means, 2)
        return scatter(points, texts, explained), f"{len(texts)} sentences, posterior means, PCA."


# The "Attribute shift" tab: latent arithmetic (Optimus, Li et al., 2020). An attribute vector is the mean posterior
# mode of texts with a property minus that of texts without it, from two pasted lists or, for a model trained on E2E,
# from its development split: texts that state the chosen fact against texts that state another value of it.
SHIFT_SOURCES = ["two lists of texts", "an E2E fact"]
E2E_FACT_VALUES = {
    "eat_type": ["coffee shop", "pub", "restaurant"],
    "area": ["city centre", "riverside"],
    "food": ["Chinese", "English", "Fast food", "French", "Indian", "Italian", "Japanese"],
    "family_friendly": ["yes", "no"],
    "price_range": ["low", "moderate", "high"],
    "customer_rating": ["low", "average", "high"],
}
E2E_FACT_CHOICES = [f"{fact} = {value}" for fact, values in E2E_FACT_VALUES.items() for value in values]
E2E_VECTOR_TEXTS = 1000  # at most this many texts on each side of an E2E fact's vector


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class LatentArithmetic:
    """The tab's methods, on a `DemoApp` (`app.arithmetic`); like the page's others, they return messages, never
    raise."""

    def __init__(self, app: DemoApp):
        self.app = app
        self.e2e: tuple[list[str], list[dict]] | None = None  # texts and their MR facts, read when first asked
        self.e2e_error: str | None = None

    def set_e2e_examples(self, texts: list[str], facts: list[dict]) -> None:
        """Use these texts and facts (a dict of fact -> value for each text) for the E2E fact vectors."""
        self.e2e, self.e2e_error = (list(texts), list(facts)), None

    def e2e_examples(self) -> tuple[list[str], list[dict]] | None:
        if self.e2e is None and self.e2e_error is None:
            self.e2e, self.e2e_error = load_e2e_examples(self.app.vae.model.name_or_path)
        return self.e2e

    def e2e_lists(self, choice: str) -> tuple[list[str], list[str]]:
        """Texts with the chosen fact's value, and texts with another value of that fact."""
        fact, _, value = (choice or "").partition(" = ")
        if fact not in E2E_FACT_VALUES or value not in E2E_FACT_VALUES[fact]:
            raise ValueError(f"Choose an E2E fact from the list (got {choice!r}).")
        examples = self.e2e_examples()
        if examples is None:
            raise ValueError(f"No E2E texts to build the vector from: {self.e2e_error}")
        texts, facts = examples
        with_ = [text for text, known in zip(texts, facts, strict=True) if known.get(fact) == value]
        without = [text for text, known in zip(texts, facts, strict=True) if known.get(fact) not in (None, value)]
        if not with_ or not without:
            raise ValueError(f"The E2E texts have no example with {fact} = {value}, or none without it.")
        return with_[:E2E_VECTOR_TEXTS], without[:E2E_VECTOR_TEXTS]

    def vector(self, source: str, texts_with: str, texts_without: str, fact: str):
        if source == "an E2E fact":
            with_, without = self.e2e_lists(fact)
        else:
            with_, without = _lines(texts_with), _lines(texts_without)
            if not with_ or not without:
                raise ValueError("Paste texts with the property and texts without it, one a line, in both boxes.")
        return self.app.vae.attribute_vector(with_, without), len(with_), len(without)

    def shift(self, source, texts_with, texts_without, fact, texts, strength=1.0, max_new_tokens=40):
        """Table rows (text, reconstruction, shifted reconstruction) for each text (one a line), and a message."""
        try:
            vector, count_with, count_without = self.vector(source, texts_with, texts_without, fact)
            inputs = _lines(texts)
            if not inputs:
                raise ValueError("Write the text(s) to shift, one a line.")
            options = {"max_new_tokens": int(max_new_tokens)}
            plain = self.app.vae.shift(inputs, vector, strength=0.0, **options)
            moved = self.app.vae.shift(inputs, vector, strength=float(strength), **options)
        except Exception as error:
            return [], self.app._failure("shift", error)
        rows = [[a["text"], a["shifted"], b["shifted"]] for a, b in zip(plain, moved, strict=True)]
        what = fact if source == "an E2E fact" else "the pasted texts"
        return rows, (
            f"Attribute vector of {what}: {count_with} texts with, {count_without} without (norm "
            f"{float(vector.norm()):.2f}); strength {float(strength):g}, greedy decoding."
        )

    def shift_own(self, name, texts, strength=1.0, max_new_tokens=40):
        """Table rows (text, reconstruction, shifted) along one of the model's own vectors (the Yelp model's
        `positive`), and a message."""
        try:
            vectors = self.app.vae.model.attribute_vectors
            if name not in vectors:
                raise ValueError(f"The model has no vector {name!r} (it has: {sorted(vectors) or 'none'}).")
            inputs = _lines(texts)
            if not inputs:
                raise ValueError("Write the text(s) to shift, one a line.")
            options = {"max_new_tokens": int(max_new_tokens)}
            plain = self.app.vae.shift(inputs, name, strength=0.0, **options)
            moved = self.app.vae.shift(inputs, name, strength=float(strength), **options)
        except Exception as error:
            return [], self.app._failure("shift", error)
        rows = [[a["text"], a["shifted"], b["shifted"]] for a, b in zip(plain, moved, strict=True)]
        return (
            rows,
            f"The model's vector {name!r} (norm {float(vectors[name].norm()):.2f}), strength {float(strength):g}.",
        )

    def analogy(self, text_a, text_b, text_c, strength=1.0, max_new_tokens=40) -> tuple[str, str]:
        try:
            text = self.app.vae.analogy(text_a, text_b, text_c, strength=float(strength),
                                        max_new_tokens=int(max_new_tokens))  # fmt: skip
        except Exception as error:
            return "", self.app._failure("complete the analogy", error)
        return text, f"z_C + {float(strength):g} (z_B - z_A), greedy decoding."


def load_e2e_examples(model) -> tuple[tuple[list[str], list[dict]] | None, str | None]:
    """The E2E development split's texts and the facts each states (`text_facts`) where its MR does not give another
    value (its MRs name no eat type but "coffee shop", though hundreds of its texts say "restaurant"), delexicalised
    as the model's training was; (None, why) when the model was not trained on E2E or the data cannot be read (it
    needs this package and the corpus)."""
    config_file = Path(str(model)) / "training_config.yaml"
    if not config_file.is_file():
        return None, "the model has no training_config.yaml naming E2E as its corpus."
    try:
        import yaml

        from modeling_twrvae.data.e2e import load_e2e, was_delexicalized
        from modeling_twrvae.metrics.e2e_facts import mr_facts, mr_names, text_facts

        settings = yaml.safe_load(config_file.read_text()) or {}
        if settings.get("dataset") != "e2e":
            return None, "the model was not trained on E2E; paste two lists of texts instead."
        data_dir = os.environ.get("TWRVAE_DATA_DIR") or settings.get("data_dir")
        data = load_e2e("validation", data_dir, delexicalized=was_delexicalized(model))
        texts, mrs = list(data["text"]), list(data["mr"])
        names = mr_names(mrs)
        facts = []
        for text, mr in zip(texts, mrs, strict=True):  # what the text says, where its MR does not say otherwise
            given = mr_facts(mr)
            facts.append({k: v for k, v in text_facts(text, names).items() if given.get(k) in (None, v)})
        return (texts, facts), None
    except Exception as error:  # the package or the corpus may not be on this machine
        return None, f"E2E's development split could not be read ({error}); paste two lists of texts instead."


def add_arithmetic_tab(app: DemoApp) -> None:
    """The "Attribute shift" tab (inside `build_demo`'s Blocks)."""
    arithmetic = LatentArithmetic(app)
    app.arithmetic = arithmetic
    with gr.Tab("Attribute shift", id="attribute-shift"):
        own_vectors = sorted(app.vae.model.attribute_vectors)
        if own_vectors:  # vectors that ship with the model: the Yelp model's `positive` (negative strength: negative)
            gr.Markdown("**The model's own vectors**: a negative strength moves away from the property.")
            own = gr.Dropdown(own_vectors, value=own_vectors[0], label="vector", elem_id="own-vector")
            own_texts = gr.Textbox(label="text(s) to shift, one a line", lines=2, elem_id="own-input")
            own_strength = gr.Slider(-3.0, 3.0, value=1.5, step=0.1, label="strength", elem_id="own-strength")
            own_button = gr.Button("Shift along it", variant="primary", elem_id="own-button")
            own_table = gr.Dataframe(headers=["text", "reconstruction", "shifted"], elem_id="own-table")
            own_message = gr.Markdown(elem_id="own-message")
            own_button.click(arithmetic.shift_own, [own, own_texts, own_strength], [own_table, own_message])
            gr.Markdown("**A vector of your own**")
        source = gr.Radio(SHIFT_SOURCES, value=SHIFT_SOURCES[0], label="attribute vector from")
        with gr.Row():
            texts_with = gr.Textbox(label="texts with the property, one a line", lines=4, elem_id="shift-with")
            texts_without = gr.Textbox(label="texts without it, one a line", lines=4, elem_id="shift-without")
        fact = gr.Dropdown(E2E_FACT_CHOICES, value="area = city centre", label="E2E fact (vs. the fact's other values)")
        texts = gr.Textbox(label="text(s) to shift, one a line", lines=2, elem_id="shift-input")
        strength = gr.Slider(-3.0, 3.0, value=1.0, step=0.1, label="strength (z + strength × vector)")
        shift_button = gr.Button("Shift", variant="primary", elem_id="shift-button")
        shifted = gr.Dataframe(headers=["text", "reconstruction", "shifted"], label="shifted reconstructions",
                               elem_id="shift-table")  # fmt: skip
        shift_message = gr.Markdown(elem_id="shift-message")
        shift_button.click(arithmetic.shift, [source, texts_with, texts_without, fact, texts, strength],
                           [shifted, shift_message])  # fmt: skip
        gr.Markdown("**Analogy** A : B :: C : ?, decoded from z_C + strength × (z_B − z_A).")
        with gr.Row():
            text_a = gr.Textbox(label="A", elem_id="analogy-a")
            text_b = gr.Textbox(label="B", elem_id="analogy-b")
            text_c = gr.Textbox(label="C", elem_id="analogy-c")
        analogy_strength = gr.Slider(-3.0, 3.0, value=1.0, step=0.1, label="strength")
        analogy_button = gr.Button("Complete", variant="primary", elem_id="analogy-button")
        analogy_output = gr.Textbox(label="D", elem_id="analogy-output")
        analogy_message = gr.Markdown(elem_id="analogy-message")
        analogy_button.click(arithmetic.analogy, [text_a, text_b, text_c, analogy_strength],
                             [analogy_output, analogy_message])  # fmt: skip


def principal_components(values: torch.Tensor, count: int) -> tuple[torch.Tensor, list[float]]:
    """Coordinates on the first `count` principal axes, and the share of the variance each explains."""
    centered = values.double() - values.double().mean(0)
    _, singular, axes = torch.linalg.svd(centered, full_matrices=False)
    variance = singular**2
    share = (variance[:count] / variance.sum().clamp_min(1e-12)).tolist()
    points = centered @ axes[:count].T
    if points.shape[1] < count:  # a latent of one dimension
        points = torch.cat([points, torch.zeros(len(points), count - points.shape[1], dtype=points.dtype)], 1)
    return points.float(), share + [0.0] * (count - len(share))


def scatter(points: torch.Tensor, texts: list[str], explained: list[float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    axes.scatter(points[:, 0], points[:, 1], s=18, alpha=0.7)
    if len(texts) <= 30:
        for (x, y), text in zip(points.tolist(), texts, strict=True):
            axes.annotate(text if len(text) <= 40 else text[:37] + "...", (x, y), fontsize=7)
    axes.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of the variance)")
    axes.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of the variance)")
    axes.set_title("Posterior means E[z|x]")
    figure.tight_layout()
    plt.close(figure)
    return figure


def load_evaluation_texts(model) -> tuple[list[str] | None, str | None]:
    """`$TWRVAE_EVAL_FILE`, else the test split of the corpus the model was trained on; (None, why) if neither."""
    path = os.environ.get("TWRVAE_EVAL_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()][:MAP_LIMIT], None
    config_file = Path(model) / "training_config.yaml"
    if not config_file.is_file():
        return None, "set TWRVAE_EVAL_FILE to a file of sentences, one a line."
    try:
        import yaml

        from modeling_twrvae.data.corpora import load_corpus

        settings = yaml.safe_load(config_file.read_text())
        if not settings.get("dataset"):
            return None, "the model was not trained on a named corpus; set TWRVAE_EVAL_FILE."
        data = load_corpus({"eval": "test"}, dataset=settings["dataset"], data_dir=settings.get("data_dir"))
        return list(data["eval"]["text"][:MAP_LIMIT]), None
    except Exception as error:  # the data may simply not be on this machine
        return None, f"the test split of the training corpus could not be read ({error}); set TWRVAE_EVAL_FILE."


def build_demo(app: DemoApp) -> gr.Blocks:
    with gr.Blocks(title="twrvae: text VAEs without posterior collapse") as demo:
        gr.Markdown("# twrvae — a text VAE's latent space")
        gr.Markdown(app.banner(), elem_id="model-banner")
        with gr.Tab("Sample", id="sample"):
            with gr.Row():
                num_samples = gr.Slider(1, 20, value=5, step=1, label="samples")
                temperature = gr.Slider(
                    0.0, 2.0, value=1.0, step=0.1, label="temperature (prior z ~ N(0, T²I); aggregate: its spread × T)"
                )
                seed = gr.Number(value=0, precision=0, label="seed")
            has_mixture = app.vae.model.aggregate_posterior is not None
            sampler = gr.Radio(
                list(SAMPLERS),
                value="aggregate posterior" if has_mixture else "prior N(0, I)",
                label="latents from",
                info="the aggregate posterior: a Gaussian mixture over the training texts' posterior means"
                + ("" if has_mixture else " (this model has none fitted)"),
                interactive=has_mixture,
                elem_id="sample-sampler",
            )
            with gr.Row():
                decoding = gr.Radio(DECODINGS, value="greedy", label="decoding")
                top_p = gr.Slider(0.1, 1.0, value=0.9, step=0.05, label="top-p")
                num_beams = gr.Slider(1, 8, value=4, step=1, label="beams")
                sample_length = gr.Slider(1, 63, value=40, step=1, label="max new tokens")
            sample_button = gr.Button("Sample", variant="primary", elem_id="sample-button")
            sample_output = gr.Textbox(label="samples", lines=6, elem_id="sample-output")
            sample_message = gr.Markdown(elem_id="sample-message")
            sample_button.click(
                app.sample,
                [num_samples, temperature, decoding, top_p, num_beams, seed, sample_length, sampler],
                [sample_output, sample_message],
            )
        with gr.Tab("Reconstruct", id="reconstruct"):
            source = gr.Textbox(label="sentence", elem_id="reconstruct-input")
            reconstruct_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
            reconstruction = gr.Textbox(label="reconstruction", elem_id="reconstruct-output")
            reconstruct_message = gr.Markdown(elem_id="reconstruct-message")
            reconstruct_button.click(app.reconstruct, [source], [reconstruction, reconstruct_message])
        with gr.Tab("Interpolate", id="interpolate"):
            with gr.Row():
                text_a = gr.Textbox(label="sentence A", elem_id="interpolate-a")
                text_b = gr.Textbox(label="sentence B", elem_id="interpolate-b")
            with gr.Row():
                steps = gr.Slider(2, 21, value=11, step=1, label="points")
                method = gr.Radio(["slerp", "linear"], value="slerp", label="path")
            interpolate_button = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
            position = gr.Slider(0, 10, value=5, step=1, label="point on the path", elem_id="interpolate-slider")
            point_text = gr.Textbox(label="text at that point", elem_id="interpolate-point")
            table = gr.Dataframe(headers=["alpha", "text"], label="the whole path", elem_id="interpolate-table")
            interpolate_message = gr.Markdown(elem_id="interpolate-message")
            path = gr.State([])
            interpolate_button.click(
                app.interpolate,
                [text_a, text_b, steps, method],
                [table, position, point_text, path, interpolate_message],
            )
            position.change(app.point, [position, path], [point_text])
        with gr.Tab("Latent map", id="latent-map"):
            choice = gr.Radio(["pasted sentences", "evaluation set"], value="pasted sentences", label="sentences")
            pasted = gr.Textbox(label="sentences, one a line", lines=6, elem_id="map-input")
            map_button = gr.Button("Map", variant="primary", elem_id="map-button")
            plot = gr.Plot(label="PCA of the posterior means", elem_id="map-plot")
            map_message = gr.Markdown(elem_id="map-message")
            map_button.click(app.latent_map, [choice, pasted], [plot, map_message])
        add_arithmetic_tab(app)
    return demo


if __name__ == "__main__":
    build_demo(DemoApp.from_env()).launch()
