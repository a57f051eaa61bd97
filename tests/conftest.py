"""Shared test fixtures: a throw-away Kedro project copy and the espeak-ng binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kedro_helpers import make_project_copy, run_kedro  # noqa: F401  (re-exported for tests)


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


@pytest.fixture(scope="session")
def espeak() -> str:
    """Path of espeak-ng; `make test` installs it, so a missing binary is a set-up error."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is not installed: run `sudo apt-get install -y espeak-ng` "
                    "(make test does this when run as root)")
    return exe
