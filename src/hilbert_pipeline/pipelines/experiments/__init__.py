"""``experiments``: every DVC experiment of the repository in one table."""

from hilbert_pipeline.pipelines.experiments.pipeline import create_pipeline

__all__ = ["create_pipeline"]
