"""Fixtures for the corpus tests: real espeak-ng speech written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilbert_pipeline.demo import synthesize_corpus

SENTENCES = {
    "d1": ["The river was wide and calm this morning.", "Boats drifted past the old mill.",
           "Nobody spoke."],
    "d2": ["Taxes will be lower next year for every family.",
           "Congress must act before the winter session ends."],
}


@pytest.fixture(scope="session")
def speech_docs() -> list[dict]:
    return [{"doc_id": k, "label": lab, "sentences": v}
            for (k, v), lab in zip(SENTENCES.items(), ["a", "b"], strict=True)]


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory, espeak, speech_docs) -> dict[str, Path]:
    """The same two documents synthesised once in every transcript format."""
    root = tmp_path_factory.mktemp("speech")
    return {fmt: synthesize_corpus(root / fmt, speech_docs, transcript_format=fmt, seed=3)
            for fmt in ("json", "vtt", "srt", "tsv", "txt")}
