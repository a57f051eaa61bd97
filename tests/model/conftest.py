"""Fixtures of tests/model (helpers live in model_test_helpers.py)."""

from __future__ import annotations

import pytest
from model_test_helpers import tiny_config

from hilbert_pipeline.model import HilbertConfig


@pytest.fixture
def cfg() -> HilbertConfig:
    return tiny_config()
