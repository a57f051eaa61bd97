"""Frozen segment encoders, their registry and the content-addressed feature cache.

No Kedro import: ``pipelines/embedding`` only wires configuration into :func:`embed_segments`.
"""

from hilbert_pipeline.encoders.base import CODE_VERSION, Encoder, EncoderError
from hilbert_pipeline.encoders.cache import FeatureCache, FileHasher, audio_key, text_key
from hilbert_pipeline.encoders.features import (
    SegmentsError,
    embed_audio,
    embed_segments,
    embed_text,
    validate_segments,
)
from hilbert_pipeline.encoders.registry import (
    available_encoders,
    get_encoder,
    register_encoder,
    shared_encoder,
)

__all__ = [
    "CODE_VERSION",
    "Encoder",
    "EncoderError",
    "FeatureCache",
    "FileHasher",
    "SegmentsError",
    "audio_key",
    "available_encoders",
    "embed_audio",
    "embed_segments",
    "embed_text",
    "get_encoder",
    "register_encoder",
    "shared_encoder",
    "text_key",
    "validate_segments",
]
