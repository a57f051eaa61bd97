"""Helpers to run this Kedro project as a user would, importable from any test
(``from kedro_helpers import make_project_copy, run_kedro``; ``tests/`` is on pytest's pythonpath).

``make_project_copy`` makes a throw-away copy of this Kedro project (pyproject + conf + empty data
layers) in a temp folder, so tests run the real pipelines without touching the checkout's data/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_LAYERS = (
    "01_raw", "02_intermediate", "03_primary", "04_feature",
    "05_model_input", "06_models", "07_model_output", "08_reporting",
)


def make_project_copy(dest: Path) -> Path:
    """Copy pyproject.toml and conf/ of this project to ``dest`` with empty data layers."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "conf", dest / "conf", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir(exist_ok=True)
    # Kedro insists on a source folder; the package itself is imported from the editable install.
    (dest / "src").mkdir(exist_ok=True)
    for layer in DATA_LAYERS:
        (dest / "data" / layer).mkdir(parents=True, exist_ok=True)
    return dest


def run_kedro(project: Path, *args: str, check: bool = True, timeout: int = 600,
              env: dict[str, str] | None = None):
    """Run ``python -m kedro <args>`` in ``project`` as a user would; return CompletedProcess.
    ``env``: extra environment variables."""
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "kedro", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kedro {' '.join(args)} failed ({proc.returncode})\n--- stdout\n{proc.stdout[-6000:]}"
            f"\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


