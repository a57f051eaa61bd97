"""Segmentation rules (docs/corpus.md): cues/clips → segments, merge short, split long, cap per document.

Order of the rules for a recording: (1) one segment per cue; (2) neighbours are merged while a
segment is shorter than ``min_duration`` (greedily, left to right; a short last segment joins the
previous one; never across a silence longer than ``max_merge_gap``, so a merged segment does not
swallow a long untranscribed stretch); (3) a segment longer than ``max_duration`` is cut into
``ceil(duration / max_duration)`` pieces of equal duration, its text cut at sentence boundaries
(else word boundaries) in proportion to duration; (4) a document with more than ``max_segments``
segments keeps ``max_segments`` of them, chosen by ``cap_strategy``:

- ``contiguous``: a window of consecutive segments at a random offset;
- ``stride``: one segment every ``n / max_segments``, from a random phase (uniform coverage).

The random draw comes from ``seed`` and the document id (``numpy.random.default_rng([seed,
crc32(doc_id)])``), so it is reproducible, different seeds differ, and one document's choice does
not change when other documents are added or removed.

Speakers: rules (2) and (3) work within a run of consecutive cues of one speaker, so a segment
never mixes two voices; the segment's ``speaker`` is that run's ("" when the format has none).
With ``segmentation.speakers.context`` a segment's ``context`` is the other speakers' turn just
before its first cue and its ``text`` reads ``context`` then its own words (docs/corpus.md).

Clip folders: a clip is the unit of audio the user cut, and its samples live in their own file, so
clips are never merged or split (a merged segment would need samples from several files); they are
only capped. Each clip is one segment with ``audio_start = 0``, ``audio_end =`` its duration, and
``start``/``end`` on a virtual timeline where the clips follow each other without gaps.

Memory: only audio headers are read (during validation); no waveform is loaded here.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hilbert_pipeline.corpus.validation import Document

CAP_STRATEGIES = ("contiguous", "stride")
SEGMENT_COLUMNS = ("doc_id", "seg_idx", "start", "end", "duration", "text", "audio_path",
                   "audio_start", "audio_end", "speaker", "context")
DOCUMENT_COLUMNS = ("doc_id", "label", "group", "split", "n_segments", "n_segments_before_cap",
                    "duration", "audio", "transcript")
#: a word that ends a sentence (closing quotes and brackets allowed after the mark)
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


@dataclass(frozen=True)
class SegmentationConfig:
    """Rules of §2. ``None`` disables a rule (no merge / no split / no cap)."""

    min_duration: float | None = 1.0
    max_duration: float | None = 15.0
    max_merge_gap: float | None = 1.5
    max_segments: int | None = 64
    cap_strategy: str = "stride"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cap_strategy not in CAP_STRATEGIES:
            raise ValueError(f"segmentation.cap_strategy must be one of {CAP_STRATEGIES}, got "
                             f"{self.cap_strategy!r}")
        for name in ("min_duration", "max_duration", "max_merge_gap"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ValueError(f"segmentation.{name} must be >= 0 or null, got {v}")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError("segmentation.max_duration must be > 0 or null")
        if (self.min_duration and self.max_duration
                and self.min_duration > self.max_duration):
            raise ValueError(f"segmentation.min_duration ({self.min_duration}) must not exceed "
                             f"max_duration ({self.max_duration})")
        if self.max_segments is not None and int(self.max_segments) < 1:
            raise ValueError(f"segmentation.max_segments must be >= 1 or null, got "
                             f"{self.max_segments}")

    @classmethod
    def from_params(cls, params: dict) -> SegmentationConfig:
        return cls(**{k: params[k] for k in cls.__dataclass_fields__ if k in params})


Span = tuple[float, float, str]


def merge_short(spans: list[Span], min_duration: float | None,
                max_merge_gap: float | None = None) -> list[Span]:
    """Merge neighbours while a segment is shorter than ``min_duration`` (see module doc)."""
    if not min_duration or len(spans) < 2:
        return list(spans)

    def joinable(a: Span, b: Span) -> bool:
        return max_merge_gap is None or b[0] - a[1] <= max_merge_gap + 1e-9

    def join(a: Span, b: Span) -> Span:
        return (a[0], max(a[1], b[1]), " ".join(t for t in (a[2], b[2]) if t))

    out: list[Span] = []
    buf = spans[0]
    for s in spans[1:]:
        if buf[1] - buf[0] < min_duration and joinable(buf, s):
            buf = join(buf, s)
        else:
            out.append(buf)
            buf = s
    if buf[1] - buf[0] < min_duration and out and joinable(out[-1], buf):
        out[-1] = join(out[-1], buf)
    else:
        out.append(buf)
    return out


def split_text(text: str, n: int) -> list[str]:
    """Cut ``text`` into ``n`` parts of about equal length, at sentence ends when one is near.

    A sentence end within a quarter of a part's length of the ideal cut wins; otherwise the cut
    goes to the nearest word boundary. Parts may be empty when there are fewer words than parts.
    """
    words = text.split()
    if n <= 1 or not words:
        return [" ".join(words)] + [""] * max(0, n - 1)
    pos = [0]
    for w in words:
        pos.append(pos[-1] + len(w) + (1 if pos[-1] else 0))
    width = pos[-1] / n
    cuts, prev = [0], 0
    for k in range(1, n):
        target = k * width
        cands = range(prev, len(words) + 1)
        sentence = [j for j in cands if 0 < j < len(words) and SENTENCE_END.search(words[j - 1])
                    and abs(pos[j] - target) <= width / 4]
        pool = sentence or list(cands)
        j = min(pool, key=lambda j: (abs(pos[j] - target), j))
        cuts.append(j)
        prev = j
    cuts.append(len(words))
    return [" ".join(words[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def split_long(spans: list[Span], max_duration: float | None) -> list[Span]:
    """Cut every segment longer than ``max_duration`` into equal pieces (text in proportion)."""
    if not max_duration:
        return list(spans)
    out: list[Span] = []
    for a, b, text in spans:
        dur = b - a
        if dur <= max_duration + 1e-9:
            out.append((a, b, text))
            continue
        n = math.ceil(dur / max_duration - 1e-9)
        edges = [a + dur * k / n for k in range(n)] + [b]
        out.extend((edges[k], edges[k + 1], t) for k, t in enumerate(split_text(text, n)))
    return out


def cap_indices(n: int, max_segments: int | None, strategy: str, seed: int,
                key: str) -> np.ndarray:
    """Indices (sorted) of the segments a document keeps; all of them when ``n <= max_segments``."""
    if max_segments is None or n <= int(max_segments):
        return np.arange(n)
    m = int(max_segments)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])
    if strategy == "contiguous":
        off = int(rng.integers(0, n - m + 1))
        return np.arange(off, off + m)
    if strategy == "stride":
        step = n / m
        phase = rng.uniform(0.0, step)
        idx = np.floor(phase + step * np.arange(m)).astype(int)
        return np.minimum(idx, n - 1)
    raise ValueError(f"unknown cap_strategy {strategy!r} (expected one of {CAP_STRATEGIES})")


def segment_document(doc: Document, cfg: SegmentationConfig) -> tuple[list[dict], int]:
    """Segments (rows of the ``segments`` table) of one document, and the count before the cap."""
    contexts = doc.contexts or [""] * len(doc.cues)
    if doc.kind == "clips":
        rows, t = [], 0.0
        for (path, dur), cue, ctx in zip(doc.clips, doc.cues, contexts, strict=True):
            rows.append({"start": t, "end": t + dur, "text": cue.text, "audio_path": str(path),
                         "audio_start": 0.0, "audio_end": dur, "speaker": cue.speaker or "",
                         "context": ctx})
            t += dur
    else:
        rows = []
        for speaker, run, ctx in _speaker_runs(doc.cues, contexts):
            spans = [(float(c.start), float(c.end), c.text) for c in run]
            spans = split_long(merge_short(spans, cfg.min_duration, cfg.max_merge_gap),
                               cfg.max_duration)
            # cues may end up to duration_tolerance after the audio: clamp the sample span
            for k, (a, b, t) in enumerate(spans):
                rows.append({"start": a, "end": b, "text": t, "audio_path": str(doc.audio),
                             "audio_start": max(0.0, a), "audio_end": min(b, doc.duration),
                             "speaker": speaker, "context": ctx if k == 0 else ""})
    for r in rows:
        if r["context"]:
            r["text"] = f"{r['context']} {r['text']}".strip()
    n_before = len(rows)
    keep = cap_indices(n_before, cfg.max_segments, cfg.cap_strategy, cfg.seed, doc.doc_id)
    out = []
    for i, k in enumerate(keep):
        r = rows[int(k)]
        out.append({"doc_id": doc.doc_id, "seg_idx": i, "start": r["start"], "end": r["end"],
                    "duration": r["end"] - r["start"], "text": r["text"],
                    "audio_path": r["audio_path"], "audio_start": r["audio_start"],
                    "audio_end": r["audio_end"], "speaker": r["speaker"],
                    "context": r["context"]})
    return out, n_before


def _speaker_runs(cues, contexts):
    """``(speaker, cues, context of the run's first cue)`` for each run of consecutive cues of
    one speaker. A cue with a context (another speaker spoke just before it) starts a run."""
    runs: list[tuple[str, list, str]] = []
    for c, ctx in zip(cues, contexts, strict=True):
        who = c.speaker or ""
        if runs and runs[-1][0] == who and not ctx:
            runs[-1][1].append(c)
        else:
            runs.append((who, [c], ctx))
    return runs


def segment_corpus(
    documents: list[Document], cfg: SegmentationConfig, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Segment every document (in manifest order); return ``segments``, ``documents``, stats."""
    from tqdm.auto import tqdm

    seg_rows: list[dict] = []
    doc_rows: list[dict] = []
    capped = 0
    for doc in tqdm(documents, desc="segmenting", unit="doc", disable=not progress):
        rows, n_before = segment_document(doc, cfg)
        capped += n_before > len(rows)
        seg_rows.extend(rows)
        doc_rows.append({"doc_id": doc.doc_id, "label": doc.label, "group": doc.group,
                         "split": doc.split, "n_segments": len(rows),
                         "n_segments_before_cap": n_before, "duration": doc.duration,
                         "audio": str(doc.audio), "transcript": str(doc.transcript)})
    segments = pd.DataFrame(seg_rows, columns=list(SEGMENT_COLUMNS))
    segments = segments.astype({"doc_id": str, "seg_idx": "int64", "start": "float64",
                                "end": "float64", "duration": "float64", "text": str,
                                "audio_path": str, "audio_start": "float64",
                                "audio_end": "float64", "speaker": str, "context": str})
    docs = pd.DataFrame(doc_rows, columns=list(DOCUMENT_COLUMNS))
    docs = docs.astype({"doc_id": str, "label": object, "group": object, "split": object,
                        "n_segments": "int64", "n_segments_before_cap": "int64",
                        "duration": "float64", "audio": str, "transcript": str})
    dur = segments["duration"].to_numpy()
    stats = {
        "n_documents": len(docs),
        "n_segments": len(segments),
        "n_documents_capped": int(capped),
        "segments_per_document": _summary(docs["n_segments"].to_numpy()),
        "segment_duration_s": _summary(dur),
        "total_segment_seconds": round(float(dur.sum()), 3),
        "n_segments_empty_text": int((segments["text"].str.len() == 0).sum()),
        "speakers": {name: {"segments": int(len(g)), "seconds": round(float(g.sum()), 3)}
                     for name, g in segments.groupby("speaker")["duration"]},
        "config": cfg.__dict__,
    }
    return segments, docs, stats


def _summary(x: np.ndarray) -> dict:
    if x.size == 0:
        return {}
    return {"min": round(float(x.min()), 3), "mean": round(float(x.mean()), 3),
            "median": round(float(np.median(x)), 3), "max": round(float(x.max()), 3)}
