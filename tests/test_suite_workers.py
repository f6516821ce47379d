import os

import pytest
import torch


@pytest.mark.skipif("PYTEST_XDIST_WORKER" not in os.environ, reason="runs only in a pytest-xdist worker (-n auto)")
def test_each_worker_uses_one_thread_so_the_workers_do_not_oversubscribe_the_cores():
    assert torch.get_num_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == "1"  # inherited by the scripts the tests start
