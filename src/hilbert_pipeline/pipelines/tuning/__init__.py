"""``tuning`` pipeline: Optuna study over HILBERT hyper-parameters (docs/tuning.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
