"""``segmentation`` pipeline: validate the corpus, then cut it into segments (DESIGN §1-2)."""

from hilbert_pipeline.pipelines.segmentation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
