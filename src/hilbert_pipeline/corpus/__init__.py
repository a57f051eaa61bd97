"""Corpus input (docs/corpus.md): manifest and transcript parsing, validation report, segmentation.

Pure library (no Kedro import). The ``segmentation`` pipeline wires it to the configuration; see
docs/corpus.md for the user-facing contract.
"""

from hilbert_pipeline.corpus.manifest import ManifestError, natural_key, read_manifest
from hilbert_pipeline.corpus.segmentation import (
    CAP_STRATEGIES,
    SegmentationConfig,
    cap_indices,
    merge_short,
    segment_corpus,
    segment_document,
    split_long,
    split_text,
)
from hilbert_pipeline.corpus.transcripts import (
    Cue,
    Problem,
    TranscriptError,
    parse_clock,
    parse_transcript,
)
from hilbert_pipeline.corpus.validation import (
    CorpusValidationError,
    Document,
    ValidationResult,
    load_corpus,
    validate_corpus,
)

__all__ = [
    "CAP_STRATEGIES",
    "CorpusValidationError",
    "Cue",
    "Document",
    "ManifestError",
    "Problem",
    "SegmentationConfig",
    "TranscriptError",
    "ValidationResult",
    "cap_indices",
    "load_corpus",
    "merge_short",
    "natural_key",
    "parse_clock",
    "parse_transcript",
    "read_manifest",
    "segment_corpus",
    "segment_document",
    "split_long",
    "split_text",
    "validate_corpus",
]
