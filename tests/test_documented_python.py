"""Every page's Python blocks (the README's and each page of docs/) run in order, as one script, from a temporary
folder, on what ../shared/data holds."""

import re

import pytest

from helpers import DATA_DIR, REPO_ROOT, documented_pages

PAGES = [page for page in documented_pages() if "```python" in page.read_text()]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO_ROOT)) for page in PAGES])
def test_the_python_examples_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    monkeypatch.chdir(tmp_path)  # the examples save to ./my-twrvae and the like
    namespace = {}
    source = "\n".join(blocks).replace("../shared/data", str(DATA_DIR))
    if "yelp-twr-vae/hub" in source:  # the built Yelp model takes an hour: a tiny stand-in with its vector
        yelp_stand_in(tmp_path / "outputs" / "hub-models" / "yelp-twr-vae" / "hub")
    exec(compile(source, str(page.relative_to(REPO_ROOT)), "exec"), namespace)
    if page.name == "README.md":
        assert (tmp_path / "my-twrvae" / "model.safetensors").is_file()
        assert len(namespace["sentences"]) == 11 and namespace["ids"].shape[0] == 8


def yelp_stand_in(folder):
    """A tiny model of Yelp's words with a `positive` vector, where the pages load the built twrvae-yelp."""
    from modeling_twrvae import train_tokenizer
    from modeling_twrvae.data.yelp import load_yelp_sentiment

    from helpers import informative, tiny_model

    train = load_yelp_sentiment("train", str(DATA_DIR)).select(range(0, 170_000, 85))
    tokenizer = train_tokenizer(train["text"], vocab_size=2000)
    model = informative(tiny_model("twr-vae", len(tokenizer)))
    texts, labels = train["text"], train["label"]
    positive = [t for t, y in zip(texts, labels, strict=True) if y == 1]
    negative = [t for t, y in zip(texts, labels, strict=True) if y == 0]
    model.add_attribute_vector("positive", model.attribute_vector(positive, negative, tokenizer))
    model.fit_aggregate_posterior(texts[:500], tokenizer, num_components=4)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_every_page_is_tested():
    assert {page.name for page in PAGES} >= {"README.md", "getting-started.md", "generation.md"}
