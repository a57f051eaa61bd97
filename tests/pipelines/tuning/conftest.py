import importlib.util
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]


def _root_conftest():
    """tests/conftest.py as a module (``run_kedro``), without relying on the name ``conftest``."""
    spec = importlib.util.spec_from_file_location("hilbert_root_conftest", TESTS / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def run_kedro():
    return _root_conftest().run_kedro


@pytest.fixture
def project(kedro_project: Path, monkeypatch) -> Path:
    """The throw-away project copy; Kedro needs <project>/src to exist (the package itself comes
    from the editable install). Wide terminal so log lines are not wrapped."""
    (kedro_project / "src").mkdir(exist_ok=True)
    monkeypatch.setenv("COLUMNS", "400")
    return kedro_project
