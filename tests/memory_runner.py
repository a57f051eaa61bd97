"""Run a project pipeline in memory, as the Kedro spaceflights starter's tests do: a DataCatalog of
MemoryDatasets (parameters from ``conf/base`` with overrides) and a SequentialRunner; no
subprocess, no catalog files. ``run_in_memory`` returns every dataset the pipeline produced or read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.memory_dataset import _EMPTY
from kedro.runner import SequentialRunner

ROOT = Path(__file__).resolve().parents[1]


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so a test can read intermediate data."""

    def _release(self) -> None:
        return None


def base_parameters() -> dict[str, Any]:
    """Every ``conf/base/parameters*.yml`` merged (each file owns its top-level keys)."""
    params: dict[str, Any] = {}
    for path in sorted((ROOT / "conf" / "base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


def _merge(base: dict, changes: Mapping) -> dict:
    for k, v in changes.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def _lookup(params: Mapping, dotted: str) -> Any:
    value: Any = params
    for part in dotted.split("."):
        value = value[part]
    return value


def run_in_memory(pipeline, inputs: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run ``pipeline`` with ``inputs`` (dataset name -> data) and the base parameters updated by
    ``params`` (nested dicts merge); return ``{dataset name: data}`` after the run."""
    merged = _merge(copy.deepcopy(base_parameters()), dict(params or {}))
    datasets: dict[str, KeptMemoryDataset] = {}
    for name in pipeline.datasets():
        if name.startswith("params:"):
            datasets[name] = KeptMemoryDataset(_lookup(merged, name[len("params:"):]),
                                           copy_mode="deepcopy")
        elif name == "parameters":
            datasets[name] = KeptMemoryDataset(merged, copy_mode="deepcopy")
        elif inputs and name in inputs:
            datasets[name] = KeptMemoryDataset(inputs[name], copy_mode="assign")
        else:
            datasets[name] = KeptMemoryDataset(copy_mode="assign")
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.datasets()
            if not name.startswith("params:") and name != "parameters"
            and datasets[name]._data is not _EMPTY}  # noqa: SLF001 - only what was produced
