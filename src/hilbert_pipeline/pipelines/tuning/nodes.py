"""Nodes of the ``tuning`` pipeline: wiring only; the logic is in ``hilbert_pipeline.tuning``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hilbert_pipeline.cluster import cluster_client
from hilbert_pipeline.tuning.run import run_tuning


def tune_node(segment_features: dict, documents: pd.DataFrame, tuning: dict, training: dict,
              label_map: dict | None, min_class_size: int, cluster: dict | None = None
              ) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, str, str]:
    """Run this worker's share of the study (or one study worker per Dask worker of the
    ``cluster`` parameters); outputs describe the whole study."""
    with cluster_client(cluster) as client:
        out = run_tuning(segment_features, documents, tuning, training, label_map=label_map,
                         min_class_size=min_class_size, client=client)
    return out.best_params, out.summary, out.trials, out.history_html, out.importance_html
