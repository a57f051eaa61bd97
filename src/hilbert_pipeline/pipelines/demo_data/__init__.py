"""``demo_data`` pipeline: build the State-of-the-Union demo corpus (docs/corpus.md)."""

from hilbert_pipeline.pipelines.demo_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
