"""``segmentation`` pipeline: validate the corpus, then cut it into segments (docs/corpus.md)."""

from hilbert_pipeline.pipelines.segmentation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
