import os

# No network here: Hub look-ups must fail at once rather than wait for a connection.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Under pytest-xdist (`-n auto`) each worker is one process per core: torch's own threads on top would oversubscribe
# the cores, which on a 2-core machine made the same training step many times slower.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import pytest
import torch

from modeling_twrvae import train_tokenizer

from helpers import read_lines

if "PYTEST_XDIST_WORKER" in os.environ:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ptb_lines() -> list[str]:
    return read_lines("ptb/ptb.valid.txt", 400)


@pytest.fixture(scope="session")
def tokenizer(ptb_lines):
    return train_tokenizer(ptb_lines, vocab_size=1200)
