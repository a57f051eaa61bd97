"""``training`` pipeline: fit HILBERT on all (training-split) documents, save the checkpoint."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
