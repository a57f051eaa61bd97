"""The quality benchmark's corpora: where the label lives, class sizes, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hilbert_pipeline.demo import regimes as rg


@pytest.mark.parametrize("regime,sizes", [
    ("text", rg.TEXT_SIZES), ("audio", rg.AUDIO_SIZES),
    ("both", {f"{h}_{s}": n for (h, s), n in rg.BOTH_SIZES.items()})])
def test_class_sizes_and_determinism(regime, sizes):
    docs = rg.regime_documents(regime, seed=0)
    assert Counter(d["label"] for d in docs) == Counter(sizes)
    assert len({d["doc_id"] for d in docs}) == len(docs)  # each address used once
    assert docs == rg.regime_documents(regime, seed=0)
    assert docs != rg.regime_documents(regime, seed=1)
    assert all(len(d["sentences"]) == 5 for d in docs)


def test_text_regime_voice_is_independent_of_the_label_and_era_is_the_label():
    docs = rg.regime_documents("text", seed=0)
    assert all(rg._era(d["year"]) == d["label"] for d in docs)
    assert len({d["voice"] for d in docs}) > 5
    rates = {lab: np.mean([d["rate"] for d in docs if d["label"] == lab]) for lab in rg.TEXT_SIZES}
    assert max(rates.values()) - min(rates.values()) < 25  # drawn from one range for all


def test_style_regimes_put_rate_and_pitch_in_the_label():
    for regime in ("audio", "both"):
        for d in rg.regime_documents(regime, seed=0):
            style = next(s for s in rg.STYLES if d["label"].endswith(s))
            rate, pitch = rg.STYLES[style]
            assert abs(d["rate"] - rate) <= rg.JITTER[0]
            assert abs(d["pitch"] - pitch) <= rg.JITTER[1]
    both = rg.regime_documents("both", seed=0)
    early = {"founding", "19th_century"}
    assert all((rg._era(d["year"]) in early) == d["label"].startswith("early") for d in both)


def test_unknown_regime_is_an_error():
    with pytest.raises(rg.RegimeError, match="unknown regime"):
        rg.regime_documents("video")


def _marks(doc):
    war = [bool({w.strip(".,;:!?\"'()").lower() for w in s.split()} & rg.WAR_WORDS)
           for s in doc["sentences"]]
    slow = [st is not None and st["rate"] == rg.MARKED_STYLE["rate"] for st in doc["styles"]]
    return np.array(war), np.array(slow)


def test_pairing_regime_differs_only_in_the_pairing_between_two_classes():
    docs = rg.segment_regime_documents("pairing", seed=0)
    assert Counter(d["label"] for d in docs) == Counter(rg.PAIRING_SIZES)
    assert docs == rg.segment_regime_documents("pairing", seed=0)
    k = rg.PAIRING_MARKED
    for d in docs:
        war, slow = _marks(d)
        assert len(war) == rg.PAIRING_SEGMENTS
        counts = (war.sum(), slow.sum(), (war & slow).sum())
        # paired and crossed have the same counts of war sentences and slow segments; only
        # whether they coincide differs; plain has neither
        assert counts == {"paired": (k, k, k), "crossed": (k, k, 0), "plain": (0, 0, 0)}[
            d["label"]]


def test_long_regime_puts_the_label_in_at_most_five_percent_of_150_segments():
    docs = rg.segment_regime_documents("long", seed=0)
    assert Counter(d["label"] for d in docs) == Counter(rg.LONG_SIZES)
    for d in docs:
        war, slow = _marks(d)
        assert len(war) >= 150 and (war | slow).sum() <= 0.05 * len(war)
        assert (war.sum(), slow.sum()) == {"kind": (rg.LONG_MARKED, 0),
                                           "style": (0, rg.LONG_MARKED),
                                           "plain": (0, 0)}[d["label"]]
    # sentences repeat across documents (one synthesis and one embedding each)
    spoken = {(s, str(st)) for d in docs
              for s, st in zip(d["sentences"], d["styles"], strict=True)}
    assert len(spoken) < 0.2 * sum(len(d["sentences"]) for d in docs)
