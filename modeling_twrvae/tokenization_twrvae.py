"""A word-level tokenizer for the papers' corpora, built with the `tokenizers` library.

The corpora are already tokenised and split on white space (PTB, Yahoo) or nearly so (E2E), so a word-level model
is what the papers use: lower-cased, `<pad> <unk> <bos> <eos>` as ids 0..3, every sentence wrapped in
`<bos> ... <eos>` (each of a pair too: `<bos> a <eos> <bos> b <eos>`), and the corpora's own unknown markers (`<unk>` in PTB, `_UNK` in Yahoo) read as `<unk>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
UNKNOWN_MARKERS = ["<unk>", "_UNK", "<UNK>"]
PRE_TOKENIZATIONS = ("whitespace", "punctuation", "papers")


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 10000,
    min_frequency: int = 1,
    lowercase: bool = True,
    pre_tokenization: str = "whitespace",
    model_max_length: int | None = None,
) -> PreTrainedTokenizerFast:
    """Learn a word vocabulary from `texts` (an iterator of sentences or documents, e.g. a training split).

    Args:
        texts: the training text, one sentence or document an item.
        vocab_size: at most this many tokens, the four special tokens included (the most frequent words win).
        min_frequency: words seen fewer times than this are left to `<unk>` (E2E: 4, "seen more than 3 times").
        lowercase: lower-case every text before splitting.
        pre_tokenization: how text is cut into words before the vocabulary look-up.
            `"whitespace"`: on white space only (the corpora are already tokenised).
            `"punctuation"`: also every punctuation mark on its own ("centre," -> "centre" ","), for raw text such
            as E2E's.
            `"papers"`: the TWR-VAE and HR-VAE reference code's splitting, for their per-word numbers: runs of `.`
            become one `.`, and `.`, `?`, `!`, `,` and `'s` are split off the word before them (`mr.` -> `mr .`,
            `u.s.` -> `u .s .`, `it's` -> `it 's`); with `lowercase`, this is the code's `Corpus._split` (80,185
            words on PTB test against 78,669 by white space).
        model_max_length: the longest sequence (special tokens included) that the tokenizer lets through untruncated.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"`vocab_size` must be larger than the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}."
        )
    if min_frequency < 1:
        raise ValueError(f"`min_frequency` must be >= 1, got {min_frequency}.")
    if pre_tokenization not in PRE_TOKENIZATIONS:
        raise ValueError(f"`pre_tokenization` must be one of {list(PRE_TOKENIZATIONS)}, got {pre_tokenization!r}.")

    tokenizer = Tokenizer(WordLevel(unk_token="<unk>"))
    # The markers are dropped while counting words (counted, `<unk>` would be ranked as a word and lose its id 1)
    # and read as `<unk>` once the vocabulary is made.
    tokenizer.normalizer = _normalizer(lowercase, pre_tokenization, marker_replacement=" ")
    tokenizer.pre_tokenizer = _pre_tokenizer(pre_tokenization)

    seen = 0

    def counted(items: Iterable[str]) -> Iterator[str]:
        nonlocal seen
        for text in items:
            if text and text.strip():
                seen += 1
                yield text

    trainer = WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tokenizer.train_from_iterator(counted(texts), trainer=trainer)
    if seen == 0:
        raise ValueError("Cannot train a tokenizer on an empty corpus: `texts` held no non-blank line.")

    tokenizer.normalizer = _normalizer(lowercase, pre_tokenization, marker_replacement="<unk>")
    # A pair is two sentences, each wrapped as a single one is (`tokenizer(a, b)`, as transformers' pair API).
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        pair="<bos> $A <eos> <bos>:1 $B:1 <eos>:1",
        special_tokens=[("<bos>", tokenizer.token_to_id("<bos>")), ("<eos>", tokenizer.token_to_id("<eos>"))],
    )
    return wrap_tokenizer(tokenizer, model_max_length=model_max_length)


def _normalizer(lowercase: bool, pre_tokenization: str, marker_replacement: str) -> normalizers.Normalizer:
    markers = "|".join(marker.replace("<", "\\<").replace(">", "\\>") for marker in UNKNOWN_MARKERS)
    steps = [normalizers.Replace(Regex(f"(?:^|(?<=\\s))(?:{markers})(?=\\s|$)"), marker_replacement)]
    if lowercase:
        steps.append(normalizers.Lowercase())
    if pre_tokenization == "papers":
        steps.append(normalizers.Replace(Regex(r"\.+"), "."))
    return normalizers.Sequence(steps)


def _pre_tokenizer(pre_tokenization: str) -> pre_tokenizers.PreTokenizer:
    words = pre_tokenizers.WhitespaceSplit()
    if pre_tokenization == "punctuation":
        return pre_tokenizers.Sequence([words, pre_tokenizers.Split(Regex(r"<unk>|[^\w\s]"), behavior="isolated")])
    if pre_tokenization == "papers":
        # The code puts a space before each mark and none after it, so a mark starts the next piece: "u.s." -> "u"
        # ".s" ".", which is what splitting with the mark merged into the following piece gives.
        return pre_tokenizers.Sequence([words, pre_tokenizers.Split(Regex(r"[.?!,]|'s"), behavior="merged_with_next")])
    return words


def wrap_tokenizer(tokenizer: Tokenizer, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """The transformers tokenizer around a `tokenizers.Tokenizer` with the four special tokens."""
    kwargs = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
        **kwargs,
    )


__all__ = ["train_tokenizer", "wrap_tokenizer", "SPECIAL_TOKENS", "PRE_TOKENIZATIONS"]
