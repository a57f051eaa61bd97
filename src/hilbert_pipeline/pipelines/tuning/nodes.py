"""Nodes of the ``tuning`` pipeline: wiring only; the logic is in ``hilbert_pipeline.tuning``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hilbert_pipeline.cluster import cluster_client
from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.tuning.run import run_tuning


def tune_node(docs: DocumentSet, label_report: dict, tuning: dict, training: dict,
              cluster: dict | None = None
              ) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, str, str]:
    """Run this worker's share of the study on the labelled training documents (or one study
    worker per Dask worker of the ``cluster`` parameters); outputs describe the whole study."""
    with cluster_client(cluster) as client:
        out = run_tuning(docs, label_report, tuning, training, client=client)
    return out.best_params, out.summary, out.trials, out.history_html, out.importance_html
