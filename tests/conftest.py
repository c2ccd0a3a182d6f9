import pytest
import torch


@pytest.fixture(scope="module")
def head():
    """The embedded BFM head at coarse density (test modules may override with their own)."""
    from expportrait.head import load_head

    torch.set_num_threads(1)
    return load_head("bfm", density="coarse")
