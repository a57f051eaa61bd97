"""Segmentation rules: merge short neighbours, split long ones, seeded cap per document."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hilbert_pipeline.corpus import (
    Cue,
    Document,
    SegmentationConfig,
    cap_indices,
    merge_short,
    segment_document,
    split_long,
    split_text,
)


def test_merge_short_neighbours():
    spans = [(0.0, 0.4, "a"), (0.5, 0.9, "b"), (1.0, 3.0, "c"), (3.1, 3.3, "d")]
    # a+b still < 1 s, so c joins too; the short last one joins its predecessor
    assert merge_short(spans, 1.0) == [(0.0, 3.3, "a b c d")]
    spans = [(0.0, 2.0, "a"), (2.1, 2.5, "b"), (2.6, 5.0, "c")]
    assert merge_short(spans, 1.0) == [(0.0, 2.0, "a"), (2.1, 5.0, "b c")]
    assert merge_short(spans, None) == spans and merge_short(spans, 0) == spans
    # never across a silence longer than max_merge_gap: the short segment stays alone
    spans = [(0.0, 0.5, "a"), (5.0, 7.0, "b")]
    assert merge_short(spans, 1.0, max_merge_gap=1.5) == spans
    assert merge_short(spans, 1.0, max_merge_gap=None) == [(0.0, 7.0, "a b")]


def test_split_long_in_equal_pieces_with_proportional_text():
    text = "One two three. Four five six seven. Eight nine."
    out = split_long([(10.0, 40.0, text)], 12.0)
    assert [(a, b) for a, b, _ in out] == [(10.0, 20.0), (20.0, 30.0), (30.0, 40.0)]
    assert " ".join(t for _, _, t in out) == text
    assert [t for _, _, t in out] == ["One two three.", "Four five six seven.", "Eight nine."]
    assert split_long([(0.0, 12.0, "x")], 12.0) == [(0.0, 12.0, "x")]
    assert split_long([(0.0, 99.0, "x")], None) == [(0.0, 99.0, "x")]


def test_split_text_word_boundaries_and_short_text():
    words = " ".join(f"w{i}" for i in range(10))  # no sentence ends: cut at the middle word
    assert split_text(words, 2) == ["w0 w1 w2 w3 w4", "w5 w6 w7 w8 w9"]
    assert split_text("a b", 4) == ["a", "", "b", ""]  # fewer words than pieces: empty parts
    assert split_text("", 3) == ["", "", ""]
    # a sentence end near the ideal cut wins over the exact middle word
    assert split_text("Aaaa bbbb cccc. Dddd eeee ffff gggg", 2) == [
        "Aaaa bbbb cccc.", "Dddd eeee ffff gggg"]


def test_cap_is_seeded_reproducible_and_seed_dependent():
    for strategy in ("contiguous", "stride"):
        a = cap_indices(100, 10, strategy, seed=0, key="doc")
        assert a.size == 10 and np.unique(a).size == 10 and a.min() >= 0 and a.max() < 100
        assert np.array_equal(a, cap_indices(100, 10, strategy, seed=0, key="doc"))
        draws = {tuple(cap_indices(100, 10, strategy, seed=s, key="doc")) for s in range(6)}
        assert len(draws) > 1, strategy  # different seeds choose differently
        other = {tuple(cap_indices(100, 10, strategy, seed=0, key=f"d{k}")) for k in range(6)}
        assert len(other) > 1  # and different documents too
    c = cap_indices(100, 10, "contiguous", 0, "doc")
    assert np.array_equal(np.diff(c), np.ones(9))
    s = cap_indices(100, 10, "stride", 0, "doc")
    assert set(np.diff(s)) <= {10} and s[0] < 10  # uniform coverage of the whole document
    assert np.array_equal(cap_indices(7, 10, "stride", 0, "x"), np.arange(7))
    assert np.array_equal(cap_indices(7, None, "stride", 0, "x"), np.arange(7))
    s = cap_indices(10, 4, "stride", 1, "x")  # non-integer stride still unique and in range
    assert np.unique(s).size == 4 and s.max() < 10


def _doc(cues: list[tuple[float, float, str]], duration: float) -> Document:
    return Document("doc", 2, "a", None, None, Path("/x/rec.flac"), Path("/x/t.json"),
                    "recording", duration,
                    [Cue(i + 1, a, b, t) for i, (a, b, t) in enumerate(cues)])


def test_segment_document_applies_all_rules_in_order():
    cues = [(0.0, 0.3, "hi"), (0.4, 2.0, "there"), (2.5, 32.0, "long one two three four"),
            (32.2, 33.0, "end")]
    doc = _doc(cues, 33.2)
    cfg = SegmentationConfig(min_duration=1.0, max_duration=10.0, max_segments=None)
    rows, n = segment_document(doc, cfg)
    assert n == len(rows) == 5
    # merging comes first: hi + there (0.3 s is short); the short last cue "end" joins the long
    # cue before it (0.2 s gap), then 2.5-33.0 s (30.5 s) is split in 4 equal pieces
    assert [(r["start"], r["end"], r["text"]) for r in rows] == [
        (0.0, 2.0, "hi there"), (2.5, 10.125, "long one"), (10.125, 17.75, "two"),
        (17.75, 25.375, "three"), (25.375, 33.0, "four end")]
    assert [r["seg_idx"] for r in rows] == list(range(5))
    assert all(r["duration"] <= 10.0 + 1e-9 for r in rows)
    assert all(r["audio_path"] == "/x/rec.flac" for r in rows)
    # a cue ending inside the tolerance after the audio is clamped in the sample span only
    rows, _ = segment_document(_doc([(0.0, 5.3, "x")], 5.0), cfg)
    assert rows[0]["end"] == 5.3 and rows[0]["audio_end"] == 5.0


def test_segment_document_cap_keeps_order_and_counts():
    cues = [(float(i), i + 0.9, f"s{i}") for i in range(30)]
    doc = _doc(cues, 31.0)
    cfg = SegmentationConfig(min_duration=None, max_duration=None, max_segments=8,
                             cap_strategy="contiguous", seed=5)
    rows, n = segment_document(doc, cfg)
    assert n == 30 and len(rows) == 8
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts) and [r["seg_idx"] for r in rows] == list(range(8))
    assert np.allclose(np.diff(starts), 1.0)
    again, _ = segment_document(doc, cfg)
    assert again == rows
    other, _ = segment_document(doc, SegmentationConfig(
        min_duration=None, max_duration=None, max_segments=8, cap_strategy="contiguous", seed=6))
    assert [r["start"] for r in other] != starts


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="cap_strategy"):
        SegmentationConfig(cap_strategy="random")
    with pytest.raises(ValueError, match="max_segments"):
        SegmentationConfig(max_segments=0)
    with pytest.raises(ValueError, match="min_duration"):
        SegmentationConfig(min_duration=5, max_duration=2)
    cfg = SegmentationConfig.from_params({"max_segments": None, "seed": 3, "progress": False})
    assert cfg.max_segments is None and cfg.seed == 3
