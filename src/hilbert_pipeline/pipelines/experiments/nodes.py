"""Nodes of the ``experiments`` pipeline: configuration wiring only (logic:
``evaluation.experiments``)."""

from __future__ import annotations

import logging

import pandas as pd

from hilbert_pipeline.evaluation.experiments import (
    dvc_experiments,
    experiments_markdown,
    experiments_table,
)

logger = logging.getLogger(__name__)


def collect_experiments_node(params: dict) -> tuple[pd.DataFrame, str]:
    """Every run DVC knows, as a CSV table and a Markdown page."""
    table = experiments_table(dvc_experiments(params.get("repo", ".")),
                              params.get("metrics_file", "data/08_reporting/headline.json"))
    md = experiments_markdown(table)
    done = table["hilbert_f1"].notna()
    logger.info("%d runs (%d with metrics); parameters that differ: %s\n%s", len(table),
                int(done.sum()), ", ".join(table.attrs["changed_params"]) or "none", md)
    return table, md
