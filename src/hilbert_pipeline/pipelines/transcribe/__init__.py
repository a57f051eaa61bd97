"""``transcribe`` pipeline: Whisper transcripts for recordings without one."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
