import sys
from pathlib import Path

import pytest
import torch

# the helpers next to the tests (tiny.py, worker.py) and tests/postgres.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
