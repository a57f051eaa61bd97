"""``TorchCheckpointDataset``: a Kedro dataset for HILBERT checkpoints.

Why a custom dataset instead of ``pickle.PickleDataset(backend=...)``: the checkpoint is written
with ``torch.save`` through ``utils.atomic_path`` (never half-written) and read back with
``torch.load(weights_only=True)`` (a checkpoint file cannot execute code), and loading validates
the format. ``load()`` returns the checkpoint dict; rebuild the model with
``hilbert_pipeline.training.checkpoint.model_from_payload(payload)``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset

from hilbert_pipeline.training.checkpoint import read_payload, save_payload


class TorchCheckpointDataset(AbstractDataset[dict, dict]):
    """Local-file checkpoint dataset (``filepath``: where the ``.pt`` file lives)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict:
        return read_payload(Path(self._filepath))

    def save(self, data: dict) -> None:
        save_payload(Path(self._filepath), data)

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
