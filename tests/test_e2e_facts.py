"""The E2E facts reader (metrics/e2e_facts.py) and the E2E loader with meaning representations (data/e2e.py)."""

import pytest

from modeling_twrvae.data.corpora import load_corpus
from modeling_twrvae.data.e2e import delexicalize, load_e2e
from modeling_twrvae.metrics.e2e_facts import FACTS, facts_kept, mr_facts, mr_names, parse_mr, text_facts

from helpers import DATA_DIR, read_lines


def test_parse_mr_reads_every_item():
    mr = "name[The Eagle], eatType[coffee shop], priceRange[£20-25], customer rating[3 out of 5], near[Burger King]"
    assert parse_mr(mr) == {
        "name": "The Eagle",
        "eatType": "coffee shop",
        "priceRange": "£20-25",
        "customer rating": "3 out of 5",
        "near": "Burger King",
    }
    # numbers and words of the same level are one value
    assert mr_facts(mr) == {"eat_type": "coffee shop", "price_range": "moderate", "customer_rating": "average"}
    with pytest.raises(ValueError, match="not an E2E meaning representation item"):
        parse_mr("name[The Eagle], cheap")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eagle is a cheap coffee shop by the river.", {"eat_type": "coffee shop", "price_range": "low", "area": "riverside"}),
        ("it is not family - friendly and serves italian food", {"family_friendly": "no", "food": "Italian"}),
        ("a kid friendly pub in the city centre rated 5 out of 5", {"family_friendly": "yes", "eat_type": "pub", "area": "city centre", "customer_rating": "high"}),
        ("prices are more than £30 and it has a low customer rating", {"price_range": "high", "customer_rating": "low"}),
    ],
)  # fmt: skip
def test_text_facts_reads_the_usual_phrasings(text, expected):
    assert text_facts(text) == expected


def test_names_holding_fact_words_are_not_read_as_facts():
    mrs = ["name[Blue Spice], eatType[pub], near[Rainbow Vegetarian Café]"]
    text = "Blue Spice is a pub near Rainbow Vegetarian Café."
    assert text_facts(text)["eat_type"] == "coffee shop"  # "café" of the landmark, without the names removed
    assert text_facts(text, mr_names(mrs))["eat_type"] == "pub"


def test_the_reader_agrees_with_the_meaning_representations_of_real_texts():
    read_lines("e2e/devset.csv", 1)
    data = load_e2e("validation", str(DATA_DIR))
    names = mr_names(data["mr"])
    for fact in FACTS:
        pairs = [
            (mr_facts(mr).get(fact), text_facts(text, names).get(fact))
            for text, mr in zip(data["text"], data["mr"], strict=True)
        ]
        stated = [(wanted, found) for wanted, found in pairs if wanted is not None]
        found = [(wanted, got) for wanted, got in stated if got is not None]
        precision = sum(wanted == got for wanted, got in found) / len(found)
        recall = sum(wanted == got for wanted, got in stated) / len(stated)
        assert precision > 0.95, (fact, precision)
        assert recall > 0.75, (fact, recall)


def test_facts_kept_counts_only_stated_facts_and_measures_chance():
    mrs = ["name[A], eatType[pub], area[riverside]", "name[B], eatType[coffee shop], area[city centre]"] * 5
    inputs = ["a pub by the riverside", "a coffee shop in the city centre"] * 5
    perfect = facts_kept(inputs, mrs, inputs)
    assert perfect["eat_type"] == {"kept": 1.0, "chance": perfect["eat_type"]["chance"], "count": 10}
    assert perfect["food"]["count"] == 0 and perfect["food"]["kept"] is None
    assert perfect["mean"]["kept"] == 1.0
    assert 0 < perfect["mean"]["chance"] < 1  # the shuffled reconstructions keep some facts by chance, not all
    collapsed = facts_kept(inputs, mrs, ["a pub by the riverside"] * 10)
    assert collapsed["eat_type"]["kept"] == 0.5 == collapsed["eat_type"]["chance"]
    with pytest.raises(ValueError, match="one entry per text"):
        facts_kept(inputs, mrs, inputs[:3])


def test_load_e2e_aligns_with_load_corpus_and_delexicalizes():
    read_lines("e2e/testset_w_refs.csv", 1)
    plain = load_e2e("test", str(DATA_DIR))
    texts = load_corpus({"eval": "test"}, dataset="e2e", data_dir=str(DATA_DIR))["eval"]["text"]
    assert list(plain["text"]) == list(texts)
    delexicalized = load_e2e("test", str(DATA_DIR), delexicalized=True)
    assert delexicalized["text"][1] == "xname is a coffee shop in city centre."
    share = sum("xname" in text for text in delexicalized["text"]) / len(delexicalized)
    assert share > 0.95


def test_delexicalize_matches_whole_names_with_or_without_the():
    mr = "name[The Eagle], near[Burger King]"
    assert delexicalize("Eagle is near burger king; the Eagle is cheap.", mr) == "xname is near xnear; xname is cheap."
    assert delexicalize("Eagleton is far away.", mr) == "Eagleton is far away."


@pytest.fixture(scope="module")
def e2e_model(tmp_path_factory):
    """A tiny untrained TWR-VAE with a tokenizer of delexicalised E2E, saved as train.py saves a delexicalised run."""
    from modeling_twrvae import train_tokenizer

    from helpers import tiny_model

    read_lines("e2e/devset.csv", 1)
    texts = load_e2e("validation", str(DATA_DIR), delexicalized=True)["text"]
    tokenizer = train_tokenizer(texts, min_frequency=4, pre_tokenization="punctuation")
    folder = tmp_path_factory.mktemp("e2e-model")
    tiny_model("twr-vae", len(tokenizer), seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "training_config.yaml").write_text("dataset: e2e\ndelexicalize: true\n")
    return folder


def test_evaluate_reports_facts_kept_on_delexicalised_e2e(e2e_model, tmp_path):
    from modeling_twrvae.commands import evaluate

    argv = [
        "--model_name_or_path", str(e2e_model), "--dataset", "e2e", "--split", "test", "--data_dir", str(DATA_DIR),
        "--max_samples", "40", "--iw_samples", "2", "--num_prior_samples", "2", "--num_interpolation_pairs", "1",
        "--max_new_tokens", "6", "--output_file", str(tmp_path / "results.json"), "--no_progress",
    ]  # fmt: skip
    results = evaluate.main(argv)
    assert results["delexicalized"] is True
    assert results["examples"]["reconstructions"][1]["input"].startswith("xname is a coffee shop")
    facts = results["facts_kept"]
    data = load_e2e("test", str(DATA_DIR), delexicalized=True)
    stated = sum(
        text_facts(text).get("eat_type") == mr_facts(mr)["eat_type"]
        for text, mr in zip(data["text"][:40], data["mr"][:40], strict=True)
    )
    assert facts["eat_type"]["count"] == stated > 30  # every input states its eat type
    assert results["facts_kept_mean"] == facts["mean"]["kept"] and 0 <= facts["mean"]["chance"] <= 1
    assert "| eat type | " in (tmp_path / "results.md").read_text()


def test_evaluate_refuses_a_delexicalised_model_on_other_text(e2e_model, tmp_path):
    from modeling_twrvae.commands import evaluate

    text = tmp_path / "texts.txt"
    text.write_text("a pub near the river\n")
    with pytest.raises(ValueError, match="trained on delexicalised E2E"):
        evaluate.main(["--model_name_or_path", str(e2e_model), "--validation_file", str(text), "--no_progress"])


def test_split_expressions_join_and_slice_and_the_main_jobs_leaves_the_evaluated_texts_unseen():
    read_lines("e2e/testset_w_refs.csv", 1)
    development, test = load_e2e("validation", str(DATA_DIR)), load_e2e("test", str(DATA_DIR))
    joined = load_e2e("validation+test[1012:]", str(DATA_DIR))
    assert len(joined) == len(development) + len(test) - 1012
    assert joined["text"][len(development)] == test["text"][1012]
    # the main job's training split shares no meaning representation with the 1,000 test texts it is measured on
    assert not set(joined["mr"]) & set(test["mr"][:1000])
    assert load_e2e("test[:3]", str(DATA_DIR))["text"] == test["text"][:3]
    with pytest.raises(ValueError, match="not a split name with an optional slice"):
        load_e2e("validation+test[a:]", str(DATA_DIR))


def test_attribute_shift_counts_what_the_shifted_texts_state():
    import torch

    from modeling_twrvae.metrics.attribute_shift import measure_attribute_shift

    mrs = ["name[A], area[riverside], food[Chinese]"] * 6 + ["name[B], area[city centre], food[Chinese]"] * 6
    texts = ["a place by the riverside with chinese food"] * 6 + ["a place in the city centre with chinese food"] * 6
    # latent dimension 0 tells the areas apart; the decoder says "city centre" above 0.5, keeping the food
    means = torch.tensor([[0.0]] * 6 + [[1.0]] * 6)

    def decode(latents):
        return [("city centre" if z[0] > 0.5 else "riverside") + " chinese food" for z in latents]

    reconstructions = decode(means)
    shift = measure_attribute_shift(means, texts, reconstructions, decode, mrs=mrs, strength=1.0)
    assert shift["description"] == "area riverside -> city centre" and shift["num_texts"] == 6
    assert shift["states_target_unshifted"] == 0.0 and shift["states_target_shifted"] == 1.0
    assert shift["other_facts_kept_shifted"] == shift["other_facts_kept_unshifted"] == 1.0
    weak = measure_attribute_shift(means, texts, reconstructions, decode, mrs=mrs, strength=0.25)
    assert weak["states_target_shifted"] == 0.0  # too weak a shift leaves the texts as they were
    assert measure_attribute_shift(means[:8], texts[:8], reconstructions[:8], decode, mrs=mrs[:8]) is None  # 2 < 5
