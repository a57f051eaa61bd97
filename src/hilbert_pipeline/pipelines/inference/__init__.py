"""``inference`` pipeline: apply the trained model to a corpus and explain its decisions."""

from hilbert_pipeline.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
