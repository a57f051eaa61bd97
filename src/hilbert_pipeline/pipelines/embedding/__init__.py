"""``embedding``: segments -> frozen audio and text vectors (``segment_features``)."""

from hilbert_pipeline.pipelines.embedding.pipeline import create_pipeline

__all__ = ["create_pipeline"]
