"""The ``whisper`` encoder through the feature pipeline: cache hits equal recomputation, clip
folders and a long recording, and the inference refusal of other features (real tiny.en)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hilbert_pipeline.contract import InferenceError, check_feature_meta
from hilbert_pipeline.corpus import SegmentationConfig, segment_corpus, validate_corpus
from hilbert_pipeline.demo import synthesize_corpus
from hilbert_pipeline.encoders import embed_segments, get_encoder

SENTENCES = ["The harbor opened at dawn.", "Ships came in with grain and salt.",
             "Roads were built in the west.", "Schools opened in every county.",
             "Taxes will be lower next year.", "Congress must act before winter."]


@pytest.fixture(scope="module")
def segments(tmp_path_factory, espeak) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("whisper_corpus")
    clips = synthesize_corpus(root / "clips", [{"doc_id": "c1", "label": "a",
                                                "sentences": SENTENCES[:3]}],
                              transcript_format="txt", seed=1)
    long = synthesize_corpus(root / "long", [{"doc_id": "l1", "label": "b",
                                              "sentences": SENTENCES * 3}], seed=2)
    rules = SegmentationConfig(min_duration=None, max_duration=None, max_segments=None)
    tables = []
    for corpus in (clips, long):
        res = validate_corpus(corpus, min_docs_per_label=1, require_labels=False)
        assert res.ok, res.report["problems"]
        tables.append(segment_corpus(res.documents, rules)[0])
    # one segment spanning the whole long recording (> 30 s): several Whisper windows
    whole = tables[1].iloc[[0]].copy()
    whole["seg_idx"], whole["audio_end"] = 0, tables[1]["audio_end"].max()
    whole["doc_id"] = "l1_whole"
    return pd.concat(tables + [whole], ignore_index=True)


def test_cache_hit_equals_recomputation_on_clips_and_long_recordings(segments, tmp_path):
    assert segments["audio_end"].max() - segments["audio_start"].min() > 30
    enc = get_encoder("whisper", device="cpu")
    first, s1 = embed_segments(segments, enc, None, tmp_path / "a", progress=False)
    hit, s2 = embed_segments(segments, get_encoder("whisper", device="cpu"), None,
                             tmp_path / "a", progress=False)
    again, _ = embed_segments(segments, get_encoder("whisper", device="cpu"), None,
                              tmp_path / "b", progress=False)
    n = len(segments)
    assert first["audio"].shape == (n, 384) and first["audio_mask"].all()
    assert s1["cache_misses"] == n and s2["cache_hits"] == n
    np.testing.assert_allclose(hit["audio"], first["audio"], atol=1e-5)
    np.testing.assert_allclose(again["audio"], first["audio"], atol=1e-5)
    # different sentences, different vectors; the whole recording is not one of its parts
    a = first["audio"]
    assert np.abs(a[0] - a[1]).max() > 1e-2 and np.abs(a[-1] - a[3]).max() > 1e-2
    assert first["meta"]["audio_encoder"]["name"] == "whisper"


def test_features_of_another_audio_encoder_are_refused_at_inference(segments, tmp_path):
    rows = segments.iloc[:2]
    whisper, _ = embed_segments(rows, get_encoder("whisper", device="cpu"), None,
                                tmp_path / "c", progress=False)
    other, _ = embed_segments(rows, get_encoder("resemblyzer", device="cpu"), None,
                              tmp_path / "c", progress=False)
    check_feature_meta(whisper["meta"], whisper["meta"], "model.pt")  # the same: accepted
    with pytest.raises(InferenceError, match="trained with whisper"):
        check_feature_meta(whisper["meta"], other["meta"], "model.pt")
