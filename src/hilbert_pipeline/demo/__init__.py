"""Demo corpus: offline espeak-ng synthesis into the corpus layout, and the State of the Union set.

``synthesize_corpus`` is the reusable entry point (tests of every pipeline use it to get real speech
with exact timestamps); ``build_sotu_corpus`` builds the default demo corpus (docs/corpus.md).
"""

from hilbert_pipeline.demo.sotu_corpus import build_sotu_corpus, select_documents, split_sentences
from hilbert_pipeline.demo.synthesis import (
    TRANSCRIPT_FORMATS,
    SynthesisError,
    find_espeak,
    synthesize_corpus,
    synthesize_sentence,
)

__all__ = [
    "TRANSCRIPT_FORMATS",
    "SynthesisError",
    "build_sotu_corpus",
    "find_espeak",
    "select_documents",
    "split_sentences",
    "synthesize_corpus",
    "synthesize_sentence",
]
