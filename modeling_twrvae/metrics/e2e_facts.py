"""The facts of an E2E restaurant description, read from its meaning representation and found again in a text.

E2E NLG pairs every text with a meaning representation (MR), e.g. `name[Blue Spice], eatType[coffee shop],
area[city centre]`. Six of its attributes take values from small closed sets, and texts state them in a few fixed
ways: eat type, area, food, family friendliness, price range and customer rating. `text_facts` finds the value a text
states for each of them with the patterns below (lower-cased, punctuation as spaces, so that it reads the model's
decoded text and the raw references alike); `facts_kept` counts how often a reconstruction states the same value as
its input, beside the chance level: how often the reconstruction of another, random input states it.

A fact counts for a text only where its MR has the attribute and the text itself states that value (E2E references
sometimes leave a fact out, and then no reconstruction can be blamed for it). On E2E's development split the patterns
find the MR's value in about nine of ten texts whose MR has the attribute (`tests/test_e2e_facts.py` checks a floor).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# MR attribute -> the name the package reports it under
ATTRIBUTES = {
    "eatType": "eat_type",
    "area": "area",
    "food": "food",
    "familyFriendly": "family_friendly",
    "priceRange": "price_range",
    "customer rating": "customer_rating",
}
FACTS = tuple(ATTRIBUTES.values())

_MR_ITEM = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*")
_NEGATION = r"(?:not|non|no|isn t|is not|aren t|n t|never)"
_FAMILY = r"(?:family|families|kid|kids|child|children)"

# (fact, MR value, pattern): the first value of a fact whose pattern matches is what the text states.
# Order matters where phrases overlap: "not family friendly" before "family friendly", "less than 20" before "20".
_PATTERNS: list[tuple[str, str, str]] = [
    ("eat_type", "coffee shop", r"\bcoffee (?:shop|house)s?\b|\bcaf[eé]\b"),
    ("eat_type", "pub", r"\bpubs?\b"),
    ("eat_type", "restaurant", r"\brestaurants?\b"),
    ("area", "riverside", r"\briver ?side\b|\bby the river\b|\bnear the river\b|\bon the river\b|\briver\b"),
    ("area", "city centre", r"\bcity cent(?:re|er)\b|\bcentre of (?:the )?city\b|\bcenter of (?:the )?city\b"),
    ("food", "Fast food", r"\bfast food\b"),
    ("food", "Chinese", r"\bchinese\b"),
    ("food", "English", r"\benglish\b|\bbritish\b"),
    ("food", "French", r"\bfrench\b"),
    ("food", "Indian", r"\bindian\b"),
    ("food", "Italian", r"\bitalian\b"),
    ("food", "Japanese", r"\bjapanese\b|\bsushi\b"),
    (
        "family_friendly",
        "no",
        rf"\b{_NEGATION} (?:\w+ ){{0,2}}{_FAMILY}\b|\b{_FAMILY} (?:are )?(?:not|unfriendly)\b|\badults? only\b"
        rf"|\bnot (?:\w+ ){{0,2}}(?:for|suitable for|welcome|allow|cater) {_FAMILY}|\b{_FAMILY} (?:\w+ ){{0,2}}not\b",
    ),
    ("family_friendly", "yes", rf"\b{_FAMILY} (?:\w+ )?friendly\b|\bfor (?:the )?(?:whole )?{_FAMILY}\b|\b{_FAMILY}\b"),
    ("price_range", "less than £20", r"\b(?:less than|under|below|lower than|cheaper than) £? ?20\b|£ ?20 or less"),
    ("price_range", "£20-25", r"£? ?20 (?:to )?£? ?25\b"),
    (
        "price_range",
        "more than £30",
        r"\b(?:more than|over|above|higher than|exceeds?) £? ?30\b|£ ?30 (?:or more|plus)",
    ),
    ("price_range", "cheap", r"\bcheap(?:ly|er|est)?\b|\binexpensive\b|\blow (?:cost|price|priced|prices)\b"),
    (
        "price_range",
        "moderate",
        r"\bmoderate(?:ly)?\b|\baverage(?:ly)? pric|\bmid (?:range|priced)\b|\bmedium pric|\breasonabl[ey] pric",
    ),
    ("price_range", "high", r"\bexpensive\b|\bhigh (?:cost|price|priced|prices|end)\b|\bpricey\b|\bhigh priced\b"),
    ("customer_rating", "1 out of 5", r"\b(?:1|one) (?:out of (?:5|five)|stars?)\b"),
    ("customer_rating", "3 out of 5", r"\b(?:3|three) (?:out of (?:5|five)|stars?)\b"),
    ("customer_rating", "5 out of 5", r"\b(?:5|five) (?:out of (?:5|five)|stars?)\b"),
    (
        "customer_rating",
        "low",
        r"\blow(?:ly)? (?:customer )?(?:rat|review|score)|\b(?:poorly|badly|lowly) (?:rated|reviewed)\b"
        r"|\brat(?:ed|ing|ings) (?:is |are |of |as )?(?:very )?low\b|\bcustomer \w+ (?:is )?low\b",
    ),
    (
        "customer_rating",
        "average",
        r"\baverage (?:customer )?(?:rat|review|score)|\brat(?:ed|ing|ings) (?:is |are |of |as )?average\b"
        r"|\bcustomer \w+ (?:is )?average\b|\baverage(?:ly)? rated\b",
    ),
    (
        "customer_rating",
        "high",
        r"\bhigh(?:ly)? (?:customer )?(?:rat|review|score)|\b(?:well|highly) (?:rated|reviewed)\b"
        r"|\brat(?:ed|ing|ings) (?:is |are |of |as )?(?:very )?high\b|\bcustomer \w+ (?:is )?high\b",
    ),
]
_COMPILED = [(fact, value, re.compile(pattern)) for fact, value, pattern in _PATTERNS]
# E2E's MRs give a price range and a customer rating either in words or in numbers, and its texts paraphrase one as
# the other ("less than £20" as "cheap", "5 out of 5" as "highly rated"): both are the same level of the fact.
LEVELS = {
    "price_range": {"cheap": "low", "less than £20": "low", "moderate": "moderate", "£20-25": "moderate",
                    "high": "high", "more than £30": "high"},
    "customer_rating": {"low": "low", "1 out of 5": "low", "average": "average", "3 out of 5": "average",
                        "high": "high", "5 out of 5": "high"},
}  # fmt: skip


def parse_mr(mr: str) -> dict[str, str]:
    """`{"name": "Blue Spice", "eatType": "coffee shop", ...}` from an E2E meaning representation."""
    items = {}
    for part in re.split(r",(?![^\[]*\])", mr):
        match = _MR_ITEM.fullmatch(part)
        if match is None:
            if part.strip():
                raise ValueError(f"not an E2E meaning representation item: {part!r} (in {mr!r})")
            continue
        items[match.group(1)] = match.group(2).strip()
    return items


def mr_facts(mr: str) -> dict[str, str]:
    """The six facts of a meaning representation under the package's names (absent attributes left out), price
    range and customer rating as their level (`LEVELS`)."""
    items = parse_mr(mr)
    facts = {name: items[attribute] for attribute, name in ATTRIBUTES.items() if attribute in items}
    return {fact: LEVELS.get(fact, {}).get(value, value) for fact, value in facts.items()}


def mr_names(mrs: Sequence[str]) -> list[str]:
    """The restaurant and landmark names (`name[...]`, `near[...]`) of `mrs`, normalised, longest first: names such
    as "Rainbow Vegetarian Café" or "Raja Indian Cuisine" hold words of facts, so they are removed before reading."""
    names = {normalise(value).strip() for mr in mrs for key, value in parse_mr(mr).items() if key in ("name", "near")}
    return sorted((name for name in names if name), key=len, reverse=True)


def normalise(text: str) -> str:
    """Lower case, apostrophes and punctuation as spaces (except £), single spaces: the raw references and the
    model's tokenised, decoded text read alike."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9£éè]+", " ", text)
    return f" {text.strip()} "


def text_facts(text: str, names: Sequence[str] = ()) -> dict[str, str]:
    """The value of each fact that `text` states (facts it does not state are left out), price range and customer
    rating as their level. `names` (normalised, as `mr_names` gives them) are removed first."""
    text = normalise(text)
    for name in names:
        text = text.replace(f" {name} ", " ")
    found: dict[str, str] = {}
    for fact, value, pattern in _COMPILED:
        if fact not in found and pattern.search(text):
            found[fact] = LEVELS.get(fact, {}).get(value, value)
    return found


def facts_kept(
    inputs: Sequence[str], mrs: Sequence[str], reconstructions: Sequence[str], seed: int = 0
) -> dict[str, dict[str, float | int]]:
    """For each fact, and `"mean"` over the six: the share of the inputs stating it whose reconstruction states the
    same value (`kept`), the same share for the reconstruction of a random other input (`chance`: the same shuffle of
    the reconstructions for every fact, fixed by `seed`), and how many inputs state it (`count`)."""
    if not len(inputs) == len(mrs) == len(reconstructions):
        raise ValueError(
            f"inputs, mrs and reconstructions must have one entry per text, got {len(inputs)}, {len(mrs)} and "
            f"{len(reconstructions)}."
        )
    others = list(range(len(reconstructions)))
    random.Random(seed).shuffle(others)
    names = mr_names(mrs)
    found = [text_facts(text, names) for text in reconstructions]
    stated = [text_facts(text, names) for text in inputs]
    rows: dict[str, dict[str, float | int]] = {}
    for fact in FACTS:
        kept = chance = count = 0
        for index, mr in enumerate(mrs):
            wanted = mr_facts(mr).get(fact)
            if wanted is None or stated[index].get(fact) != wanted:
                continue
            count += 1
            kept += found[index].get(fact) == wanted
            chance += found[others[index]].get(fact) == wanted
        rows[fact] = {
            "kept": kept / count if count else None,
            "chance": chance / count if count else None,
            "count": count,
        }
    measured = [row for row in rows.values() if row["count"]]
    rows["mean"] = {
        "kept": sum(row["kept"] for row in measured) / len(measured) if measured else None,
        "chance": sum(row["chance"] for row in measured) / len(measured) if measured else None,
        "count": sum(row["count"] for row in measured),
    }
    return rows


__all__ = ["ATTRIBUTES", "FACTS", "LEVELS", "facts_kept", "mr_facts", "mr_names", "normalise", "parse_mr", "text_facts"]
