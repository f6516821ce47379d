import os

# No network here: Hub look-ups must fail at once rather than wait for a connection.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from modeling_twrvae import train_tokenizer

from helpers import read_lines


@pytest.fixture(scope="session")
def ptb_lines() -> list[str]:
    return read_lines("ptb/ptb.valid.txt", 400)


@pytest.fixture(scope="session")
def tokenizer(ptb_lines):
    return train_tokenizer(ptb_lines, vocab_size=1200)
