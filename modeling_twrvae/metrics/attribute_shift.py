"""One attribute shift measured on evaluation texts: does adding a property's vector to a latent make its text say it?

The vector is the latent arithmetic of Optimus (Li et al., 2020; `latent_arithmetic.py`): the mean posterior mode of
the evaluated texts that have a property minus that of those that do not. It is added, with a strength, to the
posterior modes of texts without the property, and the share of their decoded texts that state it is compared with
the share among their plain reconstructions. On E2E the property is a fact of the meaning representations (the
area: city centre against riverside, and the other facts' survival is counted too); on other text it is a negation
("not" or "n't"), which every English corpus has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from .e2e_facts import FACTS, mr_names, text_facts

NEGATION = re.compile(r"\b(?:not|never|no)\b|n't\b|n ' t\b")
E2E_SHIFT = ("area", "riverside", "city centre")
MIN_TEXTS = 5


def measure_attribute_shift(
    posterior_means: torch.Tensor,
    texts: Sequence[str],
    reconstructions: Sequence[str],
    decode: Callable[[torch.Tensor], list[str]],
    mrs: Sequence[str] | None = None,
    strength: float = 1.5,
    max_texts: int = 200,
) -> dict | None:
    """Shift the texts without the property towards it and count how many then state it (None when fewer than
    `MIN_TEXTS` texts have it or lack it). `decode` turns latents into texts; `mrs`, E2E's meaning representations,
    choose the E2E fact."""
    if mrs is not None:
        names = mr_names(mrs)
        fact, source, target = E2E_SHIFT
        stated = [text_facts(text, names) for text in texts]
        with_property = [i for i, facts in enumerate(stated) if facts.get(fact) == target]
        without = [i for i, facts in enumerate(stated) if facts.get(fact) == source]

        def states(text: str) -> bool:
            return text_facts(text, names).get(fact) == target

        description = f"{fact.replace('_', ' ')} {source} -> {target}"
    else:
        with_property = [i for i, text in enumerate(texts) if NEGATION.search(text.lower())]
        without = [i for i, text in enumerate(texts) if not NEGATION.search(text.lower())]

        def states(text: str) -> bool:
            return bool(NEGATION.search(text.lower()))

        description = "no negation -> a negation (not, never, no, n't)"
    if len(with_property) < MIN_TEXTS or len(without) < MIN_TEXTS:
        return None
    vector = posterior_means[with_property].mean(0) - posterior_means[without].mean(0)
    chosen = without[:max_texts]
    shifted = decode(posterior_means[chosen] + strength * vector)
    result = {
        "description": description,
        "strength": strength,
        "vector_from": {"with": len(with_property), "without": len(without)},
        "num_texts": len(chosen),
        "states_target_shifted": sum(map(states, shifted)) / len(chosen),
        "states_target_unshifted": sum(states(reconstructions[i]) for i in chosen) / len(chosen),
        "rows": [
            {"input": texts[i], "reconstruction": reconstructions[i], "shifted": shifted[k]}
            for k, i in enumerate(chosen[:5])
        ],
    }
    if mrs is not None:
        result.update(other_facts_kept(texts, [reconstructions[i] for i in chosen], shifted, chosen, names, fact))
    return result


def other_facts_kept(texts, plain, shifted, chosen, names, moved_fact) -> dict:
    """The share of each input's other stated facts that its plain and its shifted reconstruction still state."""
    kept_plain = kept_shifted = total = 0
    for k, i in enumerate(chosen):
        wanted = {f: v for f, v in text_facts(texts[i], names).items() if f != moved_fact and f in FACTS}
        plain_facts, shifted_facts = text_facts(plain[k], names), text_facts(shifted[k], names)
        total += len(wanted)
        kept_plain += sum(plain_facts.get(f) == v for f, v in wanted.items())
        kept_shifted += sum(shifted_facts.get(f) == v for f, v in wanted.items())
    return {
        "other_facts_kept_unshifted": kept_plain / total if total else None,
        "other_facts_kept_shifted": kept_shifted / total if total else None,
    }


__all__ = ["measure_attribute_shift"]
