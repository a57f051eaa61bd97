"""``evaluation`` pipeline: every method on identical repeated stratified folds, with reports."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
