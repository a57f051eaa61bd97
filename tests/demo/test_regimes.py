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
