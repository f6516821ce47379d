"""Latent arithmetic (Optimus, Li et al., 2020): the tensor functions of `latent_arithmetic.py`, the model's
`attribute_vector` / `shift` / `analogy`, the pipeline's, the `twrvae` subcommands, the demo page's tab, and an
attribute vector that moves the fact it is made of on a tiny model trained here."""

import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModel, pipeline

from modeling_twrvae import TWRVAEConfig, TWRVAEModel, train_tokenizer
from modeling_twrvae.commands.cli import main
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.latent_arithmetic import analogy_latent, attribute_vector, shift_latents

from helpers import REPO_ROOT, run_without_package
from saved_text_vaes import save_text_vae

TOKENS = {"max_new_tokens": 8}


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    return save_text_vae(tmp_path_factory.mktemp("arithmetic") / "tiny-twrvae", tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return AutoModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def texts(ptb_lines):
    return [line for line in ptb_lines if 5 <= len(line.split()) <= 12 and "<unk>" not in line][:6]


def modes(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    return model.encode(batch["input_ids"], batch["attention_mask"]).mode()


# The tensor functions: exact arithmetic (values that binary floating point holds exactly).


def test_attribute_vector_is_the_difference_of_the_means():
    with_ = torch.tensor([[1.0, 2.0, -4.0], [3.0, 6.0, 0.0]])
    without = torch.tensor([[0.0, 1.0, 1.0], [0.5, 1.0, 1.0], [0.25, 1.0, 1.0], [0.25, 1.0, 1.0]])
    assert torch.equal(attribute_vector(with_, without), torch.tensor([1.75, 3.0, -3.0]))
    assert attribute_vector(with_.double(), without.double()).dtype == torch.float64
    assert attribute_vector(with_.half(), without.half()).dtype == torch.float32  # means in float32 at least


def test_shift_adds_strength_times_the_vector():
    latents = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    vector = torch.tensor([0.5, -2.0])
    assert torch.equal(shift_latents(latents, vector, 2.0), torch.tensor([[2.0, -2.0], [0.0, -3.5]]))
    assert torch.equal(shift_latents(latents, vector, -1), torch.tensor([[0.5, 4.0], [-1.5, 2.5]]))
    assert torch.equal(shift_latents(latents, vector, 0.0), latents)
    assert torch.equal(shift_latents(latents, vector[None], 1.0), latents + vector)  # a (1, latent_size) vector
    assert shift_latents(latents.double(), vector, 1.0).dtype == torch.float64  # the latents' dtype


def test_analogy_is_c_plus_b_minus_a():
    z_a, z_b, z_c = torch.tensor([1.0, 0.0]), torch.tensor([3.0, -1.0]), torch.tensor([0.5, 0.5])
    assert torch.equal(analogy_latent(z_a, z_b, z_c), torch.tensor([2.5, -0.5]))
    assert torch.equal(analogy_latent(z_a, z_b, z_c, strength=0.5), torch.tensor([1.5, 0.0]))
    assert torch.equal(analogy_latent(z_a, z_b, z_a), z_b)
    batch = torch.stack([z_c, z_a])  # one a and b, several c
    assert torch.equal(analogy_latent(z_a, z_b, batch), torch.tensor([[2.5, -0.5], [3.0, -1.0]]))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: attribute_vector(torch.zeros(0, 3), torch.zeros(2, 3)), "`with_latents` is empty"),
        (lambda: attribute_vector(torch.zeros(2, 3), torch.zeros(0, 3)), "`without_latents` is empty"),
        (lambda: attribute_vector(torch.zeros(2, 3), torch.zeros(2, 4)), "different latent sizes (3 and 4)"),
        (lambda: attribute_vector(torch.zeros(3), torch.zeros(2, 3)), "shape (batch, latent_size), got (3,)"),
        (lambda: attribute_vector(torch.tensor([[float("nan")]]), torch.zeros(1, 1)), "finite floating-point"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.zeros(4)), "has 4 values but the model's latent has 3"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.zeros(2, 3)), "shape (latent_size,), got (2, 3)"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long)), "must be floating point"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.tensor([0.0, float("inf"), 0.0])), "NaN or infinite"),
        (lambda: shift_latents(torch.zeros(2, 3), [0.0, 1.0, 2.0]), "must be a torch.Tensor"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.zeros(3), float("nan")), "`strength` must be a finite"),
        (lambda: shift_latents(torch.zeros(2, 3), torch.zeros(3), True), "`strength` must be a finite"),
        (lambda: analogy_latent(torch.zeros(2), torch.zeros(3), torch.zeros(2)), "same latent size, got [2, 3]"),
        (lambda: analogy_latent(torch.zeros(2), torch.zeros(2), torch.zeros(2), "1"), "`strength` must be"),
    ],
)
def test_the_tensor_functions_name_bad_input(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


# The model's methods.


def test_the_model_methods_encode_shift_and_decode(model, tokenizer, texts):
    vector = model.attribute_vector(texts[:3], texts[3:], tokenizer)
    expected = modes(model, tokenizer, texts[:3]).mean(0) - modes(model, tokenizer, texts[3:]).mean(0)
    assert vector.shape == (model.config.latent_size,) and vector.device.type == "cpu"
    torch.testing.assert_close(vector, expected)
    torch.testing.assert_close(model.attribute_vector(texts[:3], texts[3:], tokenizer, batch_size=1), vector)
    assert vector.norm() > 0.1  # the texts' latents differ: the checks below mean something

    assert model.shift(texts, vector, tokenizer, strength=0.0, **TOKENS) == model.reconstruct(
        texts, tokenizer, **TOKENS
    )
    shifted = model.shift(texts, vector, tokenizer, strength=3.0, **TOKENS)
    latents = modes(model, tokenizer, texts) + 3.0 * vector
    assert shifted == model.decode_latents(latents, tokenizer, **TOKENS)
    assert shifted != model.reconstruct(texts, tokenizer, **TOKENS)
    assert model.shift(texts[0], vector, tokenizer, **TOKENS) == model.shift(texts[:1], vector, tokenizer, **TOKENS)

    a, b, c = texts[:3]
    assert model.analogy(a, a, c, tokenizer, **TOKENS) == model.reconstruct([c], tokenizer, **TOKENS)[0]
    z_a, z_b, z_c = modes(model, tokenizer, [a, b, c])
    expected = model.decode_latents((z_c + 2.0 * (z_b - z_a))[None], tokenizer, **TOKENS)[0]
    assert model.analogy(a, b, c, tokenizer, strength=2.0, **TOKENS) == expected
    assert len(model.analogy(a, b, c, tokenizer, do_sample=True, num_return_sequences=3, **TOKENS)) == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, t, x: m.attribute_vector([], x, t), "`texts_with` needs at least one text, got none"),
        (lambda m, t, x: m.attribute_vector(x, [], t), "`texts_without` needs at least one text, got none"),
        (lambda m, t, x: m.attribute_vector(x, ["a b", "  "], t), "`texts_without`: text 2 is empty"),
        (lambda m, t, x: m.attribute_vector(x, x, t, batch_size=0), "`batch_size` must be a positive integer"),
        (lambda m, t, x: m.attribute_vector(None, x, t), "`texts_with` must be a list of texts, got NoneType"),
        (lambda m, t, x: m.shift([], torch.zeros(6), t), "`texts` needs at least one text"),
        (lambda m, t, x: m.shift(x, torch.zeros(5), t), "has 5 values but the model's latent has 6"),
        (lambda m, t, x: m.shift(x, torch.full((6,), float("nan")), t), "NaN or infinite values"),
        (lambda m, t, x: m.shift(x, torch.zeros(6), t, strength=float("inf")), "`strength` must be a finite"),
        (lambda m, t, x: m.analogy(x[0], "", x[1], t), "`text_b` must be a non-empty text"),
        (lambda m, t, x: m.analogy(x[0], x[1], x[2], t, strength=None), "`strength` must be a finite number"),
    ],
)
def test_the_model_methods_name_bad_input(model, tokenizer, texts, call, message):
    with pytest.raises(ValueError) as error:
        call(model, tokenizer, texts)
    assert message in str(error.value)


def test_the_flat_file_travels_with_the_model_and_works_without_the_package(folder, model, tokenizer, texts, tmp_path):
    assert (folder / "latent_arithmetic.py").is_file()
    vector = model.attribute_vector(texts[:3], texts[3:], tokenizer)
    save_file({"v": vector}, tmp_path / "vector.safetensors")
    expected = {
        "vector": vector.tolist(),
        "shift": model.shift(texts, vector, tokenizer, strength=2.0, **TOKENS),
        "analogy": model.analogy(*texts[:3], tokenizer, **TOKENS),
    }
    result = run_without_package(
        f"""
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        texts = {texts!r}
        vector = load_file({str(tmp_path / "vector.safetensors")!r})["v"]
        print(json.dumps({{
            "vector": model.attribute_vector(texts[:3], texts[3:], tokenizer).tolist(),
            "shift": model.shift(texts, vector, tokenizer, strength=2.0, max_new_tokens=8),
            "analogy": model.analogy(*texts[:3], tokenizer, max_new_tokens=8),
        }}))
        """,
        tmp_path,
    )
    assert result["shift"] == expected["shift"] and result["analogy"] == expected["analogy"]
    torch.testing.assert_close(torch.tensor(result["vector"]), vector)


# The test: on a tiny model trained here, an attribute vector moves the fact it is made of.

NAMES = ["eagle", "mill", "punter", "wrestlers", "phoenix", "plough", "cricketers", "olive"]
AREAS = ["north", "south", "east", "west"]


def kind(text: str) -> str | None:
    return "coffee shop" if " coffee shop " in f" {text} " else "pub" if " pub " in f" {text} " else None


@pytest.fixture(scope="module")
def trained():
    """A tiny TWR-VAE trained for a few seconds on "the X is a pub|coffee shop in the north|south|east|west ."."""
    texts = [f"the {name} is a {kind} in the {area} ." for name in NAMES for kind in ("pub", "coffee shop")
             for area in AREAS]  # fmt: skip
    tokenizer = train_tokenizer(texts, vocab_size=100)
    torch.manual_seed(0)
    config = TWRVAEConfig.from_preset("twr-vae", vocab_size=len(tokenizer), embedding_size=16, hidden_size=32,
                                      latent_size=8, dropout=0.0)  # fmt: skip
    model = TWRVAEModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    order = random.Random(0)
    model.train()
    for _ in range(400):
        batch = tokenizer(order.sample(texts, 32), padding=True, return_tensors="pt")
        # a small KL weight: a few seconds of training at weight 1 leave the decoder ignoring z
        loss = model(batch["input_ids"], batch["attention_mask"], kl_weight=0.05).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer, texts


def test_an_attribute_vector_moves_the_fact_it_is_made_of(trained):
    model, tokenizer, texts = trained
    pubs = [text for text in texts if kind(text) == "pub"]
    coffee_shops = [text for text in texts if kind(text) == "coffee shop"]
    # the vector from half of the texts, applied to the other half
    made_of = [text for text in texts if NAMES.index(text.split()[1]) % 2 == 0]
    held_out_pubs = [text for text in pubs if text not in made_of]
    held_out_coffee_shops = [text for text in coffee_shops if text not in made_of]
    to_coffee = model.attribute_vector([t for t in made_of if kind(t) == "coffee shop"],
                                       [t for t in made_of if kind(t) == "pub"], tokenizer)  # fmt: skip

    def share(outputs, wanted):
        return sum(kind(output) == wanted for output in outputs) / len(outputs)

    plain_pubs = model.reconstruct(held_out_pubs, tokenizer, max_new_tokens=12)
    plain_coffee = model.reconstruct(held_out_coffee_shops, tokenizer, max_new_tokens=12)
    assert share(plain_pubs, "pub") >= 0.75 and share(plain_coffee, "coffee shop") >= 0.75  # the model keeps it
    shifted = model.shift(held_out_pubs, to_coffee, tokenizer, strength=1.0, max_new_tokens=12)
    assert share(shifted, "coffee shop") >= 0.75 and share(shifted, "coffee shop") > share(plain_pubs, "coffee shop")
    back = model.shift(held_out_coffee_shops, to_coffee, tokenizer, strength=-1.0, max_new_tokens=12)
    assert share(back, "pub") >= 0.75 and share(back, "pub") > share(plain_coffee, "pub")
    # the sentence stays a sentence of the corpus: "the ... is a ... in the ... ."
    assert all(output.startswith("the ") and " is a " in output and " in the " in output for output in shifted)
    # an analogy: a pub to a coffee shop, applied to another pub
    analogy = model.analogy(held_out_pubs[0], held_out_coffee_shops[0], held_out_pubs[1], tokenizer, max_new_tokens=12)
    assert kind(analogy) == "coffee shop"


# The pipeline.


@pytest.fixture(scope="module")
def vae(folder):
    return pipeline("text-vae", model=str(folder), trust_remote_code=True)


def test_the_pipeline_offers_the_arithmetic(vae, model, tokenizer, texts):
    vector = vae.attribute_vector(texts[:3], texts[3:])
    torch.testing.assert_close(vector, model.attribute_vector(texts[:3], texts[3:], tokenizer))
    records = vae.shift(texts, vector, strength=2.0, **TOKENS)
    expected = model.shift(texts, vector, tokenizer, strength=2.0, **TOKENS)
    assert records == [{"text": t, "strength": 2.0, "shifted": s} for t, s in zip(texts, expected, strict=True)]
    assert vae.shift(texts[0], vector, **TOKENS) == vae.shift(texts[:1], vector, **TOKENS)
    several = vae.shift(texts[:2], vector, do_sample=True, num_return_sequences=2, **TOKENS)
    assert [len(record["shifted_all"]) for record in several] == [2, 2]
    assert vae.analogy(*texts[:3], **TOKENS) == model.analogy(*texts[:3], tokenizer, **TOKENS)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda vae, x: vae.attribute_vector([], x), "No text given"),
        (lambda vae, x: vae.shift(["qqqzz xxyyz"], torch.zeros(6)), "has no word in the model's vocabulary"),
        (lambda vae, x: vae.shift(x, torch.zeros(7)), "has 7 values but the model's latent has 6"),
        (lambda vae, x: vae.analogy(x[0], x[1], "  "), "Text 3 is empty"),
    ],
)
def test_the_pipeline_names_bad_input(vae, texts, call, message):
    with pytest.raises(ValueError) as error:
        call(vae, texts)
    assert message in str(error.value)


# The `twrvae` subcommands.


def call(args, capsys, monkeypatch, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def text_files(texts, tmp_path):
    with_file, without_file = tmp_path / "with.txt", tmp_path / "without.txt"
    with_file.write_text("\ufeff" + "\n".join(texts[:3]) + "\n\n", encoding="utf-8")
    without_file.write_text("\n".join(texts[3:]) + "\n", encoding="utf-8")
    return with_file, without_file


def test_attribute_vector_command_writes_the_vector_and_the_weights_fingerprint(
    folder, model, tokenizer, texts, text_files, tmp_path, capsys, monkeypatch
):
    target = tmp_path / "vectors" / "v.safetensors"
    status, out, err = call(["attribute-vector", folder, "--with", text_files[0], "--without", text_files[1],
                             "--output", target, "--json"], capsys, monkeypatch)  # fmt: skip
    assert status == 0, err
    expected = model.attribute_vector(texts[:3], texts[3:], tokenizer)
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record == {"output": str(target), "latent_size": 6, "norm": pytest.approx(float(expected.norm())),
                      "num_with": 3, "num_without": 3, "weights_sha256": weights_fingerprint(folder)}  # fmt: skip
    with safe_open(str(target), framework="pt") as stored:
        torch.testing.assert_close(stored.get_tensor("attribute_vector"), expected)
        metadata = stored.metadata()
    assert metadata["weights_sha256"] == weights_fingerprint(folder) and metadata["model"] == str(folder)
    assert metadata["format"] == "twrvae-attribute-vector" and metadata["num_with"] == "3"
    assert [path.name for path in target.parent.iterdir()] == ["v.safetensors"]  # no temporary file left
    status, out, _ = call(["attribute-vector", folder, "--with", text_files[0], "--without", text_files[1],
                           "--output", target, "--overwrite"], capsys, monkeypatch)  # fmt: skip
    assert status == 0 and out.startswith(f"wrote {target}: attribute vector of 6 values, norm ")

    status, out, err = call(["shift", folder, "--vector", target, "--strength", 2, "--max-new-tokens", 8, *texts],
                            capsys, monkeypatch)  # fmt: skip
    assert status == 0, err
    assert out.splitlines() == model.shift(texts, expected, tokenizer, strength=2.0, **TOKENS)
    status, out, _ = call(["shift", folder, "--vector", target, "--json", "--max-new-tokens", 8], capsys, monkeypatch,
                          "\n".join(texts[:2]))  # fmt: skip
    shifted = model.shift(texts[:2], expected, tokenizer, **TOKENS)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [
        {"text": text, "strength": 1.0, "shifted": output} for text, output in zip(texts[:2], shifted, strict=True)
    ]

    # a vector made for other weights is refused, with what to do
    other = shutil.copytree(folder, tmp_path / "other")
    retrained = AutoModel.from_pretrained(other)
    with torch.no_grad():
        retrained.decoder.lm_head.weight.add_(0.01)
    retrained.save_pretrained(other)
    status, out, err = call(["shift", other, "--vector", target, texts[0]], capsys, monkeypatch)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "was made for other weights" in err and f"twrvae attribute-vector {other}" in err


def test_a_hub_repo_ids_vector_names_its_cached_weights(folder, text_files, tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"  # the layout huggingface_hub gives a downloaded repository
    repo = tmp_path / "hub" / "models--someone--tiny-twrvae"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    target = tmp_path / "v.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run([sys.executable, "-m", "modeling_twrvae", "attribute-vector", "someone/tiny-twrvae", "--with",
                           str(text_files[0]), "--without", str(text_files[1]), "--output", str(target), "--json"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["weights_sha256"] == weights_fingerprint(folder)


def test_analogy_command(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["analogy", folder, *texts[:3], "--strength", 0.5, "--max-new-tokens", 8, "--json"], capsys,
                          monkeypatch)  # fmt: skip
    expected = model.analogy(*texts[:3], tokenizer, strength=0.5, **TOKENS)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [
        {"a": texts[0], "b": texts[1], "c": texts[2], "strength": 0.5, "text": expected}
    ]
    status, out, _ = call(["analogy", folder, *texts[:3], "--max-new-tokens", 8], capsys, monkeypatch)
    assert status == 0 and out.splitlines() == [model.analogy(*texts[:3], tokenizer, **TOKENS)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attribute-vector", "{folder}", "--with", "{tmp}/none.txt", "--without", "{without}", "--output",
          "{tmp}/v.safetensors"], "--with {tmp}/none.txt: no such file"),
        (["attribute-vector", "{folder}", "--with", "{with}", "--without", "{tmp}/empty.txt", "--output",
          "{tmp}/v.safetensors"], "holds no text: write one text a line"),
        (["attribute-vector", "{folder}", "--with", "{with}", "--without", "{without}", "--output", "{tmp}/v.pt"],
         "--output must name a .safetensors file"),
        (["attribute-vector", "{folder}", "--with", "{with}", "--without", "{tmp}/latin1.txt", "--output",
          "{tmp}/v.safetensors"], "is not UTF-8"),
        (["shift", "{folder}", "--vector", "{tmp}/none.safetensors", "the company"], "no such file. Make one with"),
        (["shift", "{folder}", "--vector", "{tmp}/other.safetensors", "the company"], "holds no 'attribute_vector'"),
        (["shift", "{folder}", "--vector", "{tmp}/bare.safetensors", "the company"], "does not say which weights"),
        (["shift", "{folder}", "--vector", "{tmp}/bare.safetensors", "--strength", "nan", "the company"],
         "--strength must be a finite number"),
        (["shift", "{folder}", "--vector", "{with}", "the company"], "is not a readable safetensors file"),
        (["analogy", "{folder}", "the company", "", "the market"], "Text 2 is empty"),
    ],
)  # fmt: skip
def test_command_error_paths(folder, text_files, tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    save_file({"posterior_mean": torch.zeros(6)}, tmp_path / "other.safetensors")
    save_file({"attribute_vector": torch.zeros(6)}, tmp_path / "bare.safetensors")
    names = {"folder": folder, "tmp": tmp_path, "with": text_files[0], "without": text_files[1]}
    args = [arg.format(**names) for arg in args]
    status, out, err = call(args, capsys, monkeypatch)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message.format(**names) in err, err


# The demo page's tab.


def load_app_module():
    spec = importlib.util.spec_from_file_location("twrvae_demo_app_arithmetic", REPO_ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def arithmetic(folder, texts):
    app_module = load_app_module()
    app = app_module.DemoApp(app_module.load_pipeline(folder, device="cpu"), evaluation_texts=texts)
    return app_module.LatentArithmetic(app)


def test_the_demo_tab_shifts_pasted_lists_and_e2e_facts(arithmetic, model, tokenizer, texts):
    rows, message = arithmetic.shift("two lists of texts", "\n".join(texts[:3]), "\n".join(texts[3:]), None,
                                     "\n".join(texts[:2]), strength=2.0, max_new_tokens=8)  # fmt: skip
    vector = model.attribute_vector(texts[:3], texts[3:], tokenizer)
    shifted = model.shift(texts[:2], vector, tokenizer, strength=2.0, **TOKENS)
    assert rows == [[text, plain, moved] for text, plain, moved in
                    zip(texts[:2], model.reconstruct(texts[:2], tokenizer, **TOKENS), shifted, strict=True)]  # fmt: skip
    assert "3 texts with, 3 without" in message and "strength 2" in message

    facts = [{"eat_type": "pub"}, {"eat_type": "coffee shop"}, {"area": "riverside"}, {"eat_type": "restaurant"}]
    arithmetic.set_e2e_examples(texts[:4], facts)
    rows, message = arithmetic.shift("an E2E fact", "", "", "eat_type = pub", texts[4], strength=1.0, max_new_tokens=8)
    vector = model.attribute_vector(texts[:1], [texts[1], texts[3]], tokenizer)  # the area-only text is on no side
    assert rows == [[texts[4], model.reconstruct([texts[4]], tokenizer, **TOKENS)[0],
                     model.shift([texts[4]], vector, tokenizer, **TOKENS)[0]]]  # fmt: skip
    assert "eat_type = pub: 1 texts with, 2 without" in message

    text, message = arithmetic.analogy(*texts[:3], strength=1.0, max_new_tokens=8)
    assert text == model.analogy(*texts[:3], tokenizer, **TOKENS) and "z_C + 1 (z_B - z_A)" in message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("two lists of texts", "", "a b", None, "the company"), "Paste texts with the property"),
        (("two lists of texts", "the company", "the market", None, ""), "Write the text(s) to shift"),
        (("an E2E fact", "", "", "food = Martian", "the company"), "Choose an E2E fact from the list"),
        (("an E2E fact", "", "", "food = Italian", "the company"), "no example with food = Italian"),
    ],
)
def test_the_demo_tab_turns_bad_input_into_messages(arithmetic, texts, args, message):
    arithmetic.set_e2e_examples(texts[:2], [{"eat_type": "pub"}, {"eat_type": "coffee shop"}])
    rows, text = arithmetic.shift(*args, max_new_tokens=8)
    assert rows == [] and text.startswith("⚠️") and message in text, text
    output, text = arithmetic.analogy("qqqzz xxyyz", texts[0], texts[1], max_new_tokens=8)
    assert output == "" and "has no word in the model's vocabulary" in text
