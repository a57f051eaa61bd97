"""``kedro viz build`` writes a static site holding every registered pipeline, with layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro_helpers import make_project_copy

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "src" / "hilbert_pipeline" / "pipelines"
#: Kedro's data-layer convention (data/01_raw ... 08_reporting)
LAYERS = {"raw", "intermediate", "primary", "feature", "model_input", "models", "model_output",
          "reporting"}


@pytest.mark.slow
def test_viz_build_has_every_pipeline_with_layers(tmp_path):
    project = make_project_copy(tmp_path / "project")
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    build = project / "build"
    assert (build / "index.html").is_file()

    expected = {p.name for p in PIPELINES.iterdir()
                if (p / "pipeline.py").is_file()} | {"__default__"}
    assert {"demo_data", "segmentation", "embedding", "training", "tuning",
            "evaluation"} <= expected
    built = {p.name for p in (build / "api" / "pipelines").iterdir()}
    assert expected <= built, f"missing pipelines in the site: {expected - built}"

    main = json.loads((build / "api" / "main").read_text())
    assert expected <= {p["id"] for p in main["pipelines"]}
    for name in expected:
        graph = json.loads((build / "api" / "pipelines" / name).read_text())
        tasks = [n for n in graph["nodes"] if n["type"] == "task"]
        assert tasks, f"pipeline {name} has no nodes in the site"
        data = [n for n in graph["nodes"] if n["type"] == "data"]
        unlayered = [n["name"] for n in data if not n.get("layer")]
        assert not unlayered, f"pipeline {name}: datasets without a kedro-viz layer {unlayered}"
        assert set(graph["layers"]) <= LAYERS, graph["layers"]
    default = json.loads((build / "api" / "pipelines" / "__default__").read_text())
    assert {"primary", "feature", "models", "reporting"} <= set(default["layers"])
