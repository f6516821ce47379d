"""The example cards in model_cards/examples/ are what publish.py renders now: parseable, with a pipeline that loads
the model (or none), and, for the text VAEs, the examples and plain sentences of what the latent does."""

import pytest
from huggingface_hub import ModelCard

from helpers import REPO_ROOT

CARDS = sorted(path for path in (REPO_ROOT / "model_cards" / "examples").glob("*.md") if path.name != "README.md")


def test_there_are_cards_of_every_ready_to_publish_model():
    names = {path.name for path in CARDS}
    assert {"twrvae-e2e.md", "twrvae-ptb.md", "twrvae-yahoo.md", "twrvae-e2e-demo.md"} <= names


@pytest.mark.parametrize("path", CARDS, ids=[path.name for path in CARDS])
def test_example_card_matches_the_current_template(path):
    card = ModelCard.load(path)
    text = " ".join(card.text.split())
    if path.name.startswith("twrvae-"):
        assert card.data.pipeline_tag == "feature-extraction"  # pipeline("feature-extraction", ...) loads it
        assert "What the latent does, shown" in text and "| input | reconstruction |" in text
        assert "against a random other input" in text and "has not collapsed" not in text
    else:
        assert card.data.pipeline_tag is None
    assert "best validation" not in text or "validated once" not in text
