"""Speech recognition for recordings without a transcript (docs/corpus.md, "Recordings without
transcripts"). Pure library (no Kedro import); the ``transcribe`` node of the segmentation
pipeline wires it to the parameters."""

from hilbert_pipeline.transcribe.corpus import transcribe_corpus
from hilbert_pipeline.transcribe.whisper import (
    TranscribeError,
    TranscribeOptions,
    WhisperTranscriber,
    shipped_model_dir,
)

__all__ = ["TranscribeError", "TranscribeOptions", "WhisperTranscriber", "shipped_model_dir",
           "transcribe_corpus"]
