"""``demo_data`` pipeline: build the State-of-the-Union demo corpus (DESIGN §8)."""

from hilbert_pipeline.pipelines.demo_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
