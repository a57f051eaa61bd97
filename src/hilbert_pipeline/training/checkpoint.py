"""Checkpoints that rebuild a trained model from the file alone.

Payload (``torch.save`` of a plain dict, so ``torch.load(weights_only=True)`` can read it and a
checkpoint can never execute code when loaded)::

    {"format": "hilbert-checkpoint", "version": 3,
     "config": HilbertConfig.to_dict(), "state_dict": {...tensors...},
     "label_names": [...], "encoder_meta": segment_features["meta"],
     "training_params": TrainingParams.to_dict(), "extra": {...}}

Writes go through ``utils.atomic_path``: a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilbert_pipeline.errors import UserError
from hilbert_pipeline.model import HilbertConfig, HilbertModel
from hilbert_pipeline.utils import atomic_path, resolve_device

FORMAT = "hilbert-checkpoint"
#: 2: the model holds the learned InfoNCE temperature (``log_temperature`` in the state dict)
#: 4: the network holds unimodal members and their weights (``members.*``, ``member_weights``)
VERSION = 4
KEYS = ("config", "state_dict", "label_names", "encoder_meta", "training_params", "extra")


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable or not a HILBERT checkpoint."""


@dataclass
class Checkpoint:
    model: Any  # HilbertModel in eval mode
    config: Any  # HilbertConfig
    label_names: list[str]
    encoder_meta: dict[str, Any]
    training_params: dict[str, Any]
    extra: dict[str, Any]


def make_payload(model, label_names, encoder_meta: Mapping[str, Any] | None = None,
                 training_params: Mapping[str, Any] | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict for ``model`` (state moved to CPU)."""
    if len(label_names) != model.config.n_classes:
        raise CheckpointError(f"{len(label_names)} label names for a model with "
                              f"{model.config.n_classes} classes")
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "label_names": [str(x) for x in label_names],
        "encoder_meta": _plain(dict(encoder_meta or {})),
        "training_params": _plain(dict(training_params or {})),
        "extra": _plain(dict(extra or {})),
    }


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain Python so weights_only loading works."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_payload(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write a payload from :func:`make_payload` atomically; return the path."""
    import torch

    missing = [k for k in KEYS if k not in payload]
    if missing or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint payload (missing {missing})")
    with atomic_path(path) as tmp:
        torch.save(dict(payload), tmp)
    return Path(path)


def save_checkpoint(path: str | os.PathLike, model, label_names, encoder_meta=None,
                    training_params=None, extra=None) -> Path:
    return save_payload(path, make_payload(model, label_names, encoder_meta, training_params,
                                           extra))


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Load the raw checkpoint dict (tensors on CPU), validating its format."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (run `kedro run --pipelines "
                              f"training`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means a bad file
        raise CheckpointError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a HILBERT checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')} is not "
                              f"supported (expected {VERSION}); retrain with this version "
                              f"(`kedro run --pipelines training`)")
    missing = [k for k in KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return payload


def model_from_payload(payload: Mapping[str, Any], device: str = "cpu") -> Checkpoint:
    """Rebuild the model (eval mode) from a checkpoint dict."""

    config = HilbertConfig.from_dict(dict(payload["config"]))
    model = HilbertModel(config)
    model.load_state_dict(payload["state_dict"])
    model.to(resolve_device(device)).eval()
    return Checkpoint(model=model, config=config, label_names=list(payload["label_names"]),
                      encoder_meta=dict(payload["encoder_meta"]),
                      training_params=dict(payload["training_params"]),
                      extra=dict(payload["extra"]))


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Checkpoint:
    """Rebuild a trained model from the checkpoint file alone."""
    return model_from_payload(read_payload(path), device)
