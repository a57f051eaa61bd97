"""The encoder registry: names -> encoder classes (the built-ins and any a user registers).

Imports flow one way: :mod:`.base` (the interface) <- :mod:`.audio`, :mod:`.text` (the
encoders) <- this module (their names)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from hilbert_pipeline.encoders.audio import (
    EGeMAPSEncoder,
    HFSpeechEncoder,
    ResemblyzerEncoder,
    WhisperEncoder,
)
from hilbert_pipeline.encoders.base import Encoder, EncoderError
from hilbert_pipeline.encoders.text import HFTextEncoder, MiniLMEncoder

_REGISTRY: dict[str, Callable[..., Encoder]] = {
    "resemblyzer": ResemblyzerEncoder,
    "egemaps": EGeMAPSEncoder,
    "hf-speech": HFSpeechEncoder,
    "whisper": WhisperEncoder,
    "hf-text": HFTextEncoder,
    "minilm": MiniLMEncoder,
}


def register_encoder(name: str, factory: Callable[..., Encoder] | None = None, *,
                     replace: bool = False):
    """Register ``factory`` (an Encoder subclass or callable) under ``name``; usable as decorator."""

    def _register(f: Callable[..., Encoder]) -> Callable[..., Encoder]:
        if name in _REGISTRY and not replace and _REGISTRY[name] is not f:
            raise EncoderError(f"encoder {name!r} is already registered")
        _REGISTRY[name] = f
        return f

    return _register(factory) if factory is not None else _register


def available_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str, **options: Any) -> Encoder:
    """Build the encoder registered as ``name`` with ``options`` (no weights are loaded yet)."""
    if name not in _REGISTRY:
        raise EncoderError(f"unknown encoder {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as exc:  # unexpected keyword
        raise EncoderError(f"encoder {name!r}: invalid options {sorted(options)}: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _shared(name: str, options_json: str) -> Encoder:
    return get_encoder(name, **json.loads(options_json))


def shared_encoder(name: str, **options: Any) -> Encoder:
    """One encoder object per (name, options) per process, so that a loaded model stays loaded:
    the embedding node, and each Dask worker across its tasks, load each encoder once."""
    return _shared(str(name), json.dumps(options, sort_keys=True, default=str))
