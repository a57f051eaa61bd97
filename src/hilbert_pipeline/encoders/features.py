"""Segment table -> per-segment audio and text vectors, through the content-addressed cache.

``embed_segments`` is the library behind the ``embedding`` Kedro pipeline (no Kedro import).

Audio path: cache keys are computed from file hashes and spans without decoding anything; only
missing keys are decoded. A background thread reads each document's file once per window of at
most ``max_read_seconds`` (not once per segment), cuts the segments out at the file's own rate,
resamples each to the encoder's rate (bit-identical to calling ``audio.load_audio`` per segment)
and runs the encoder's ``prepare`` step; the main thread meanwhile runs the batched forward. Items
are pooled a few batches at a time and sorted by length to cut padding, and every batch is written
to the cache as soon as it is computed.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.audio import AudioError, audio_info, load_audio, resample
from hilbert_pipeline.encoders.base import Encoder, EncoderError, check_finite
from hilbert_pipeline.encoders.cache import FeatureCache, FileHasher, audio_key, text_key
from hilbert_pipeline.errors import UserError

SEGMENT_COLUMNS = ("doc_id", "seg_idx", "text", "audio_path", "audio_start", "audio_end")


class SegmentsError(UserError):
    """The segments table is malformed (names the rows and the problem)."""


def validate_segments(segments: pd.DataFrame, source: str = "segments") -> None:
    """Check the columns and per-row values the embedding needs; report every problem at once."""
    missing = [c for c in SEGMENT_COLUMNS if c not in segments.columns]
    if missing:
        raise SegmentsError(f"{source}: missing column(s) {missing}; has {list(segments.columns)}")
    problems: list[str] = []
    start = pd.to_numeric(segments["audio_start"], errors="coerce").to_numpy(np.float64)
    end = pd.to_numeric(segments["audio_end"], errors="coerce").to_numpy(np.float64)
    for i, (doc, seg, path) in enumerate(zip(segments["doc_id"], segments["seg_idx"],
                                             segments["audio_path"], strict=True)):
        where = f"row {i} (doc_id={doc!r}, seg_idx={seg!r})"
        if doc is None or (isinstance(doc, float) and math.isnan(doc)) or str(doc) == "":
            problems.append(f"{where}: empty doc_id")
        if not isinstance(path, str) or not path:
            problems.append(f"{where}: audio_path is empty")
        if not (np.isfinite(start[i]) and np.isfinite(end[i])):
            problems.append(f"{where}: audio_start/audio_end not finite ({start[i]}, {end[i]})")
        elif end[i] < start[i] or start[i] < 0:
            problems.append(f"{where}: invalid audio span [{start[i]}, {end[i]}]")
    dup = segments.duplicated(["doc_id", "seg_idx"], keep=False)
    for i in np.flatnonzero(dup.to_numpy())[:20]:
        problems.append(f"row {i}: duplicate (doc_id, seg_idx) = "
                        f"({segments['doc_id'].iat[i]!r}, {segments['seg_idx'].iat[i]!r})")
    if problems:
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise SegmentsError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(problems[:50])
                            + more)


@dataclass
class ModalityResult:
    vectors: np.ndarray
    mask: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seg", disable=not enabled or total == 0,
                dynamic_ncols=True, mininterval=0.5)


def _labels(segments: pd.DataFrame) -> list[str]:
    return [f"document {d!r} segment {s}" for d, s in zip(segments["doc_id"], segments["seg_idx"],
                                                          strict=True)]


def _namespace(enc: Encoder) -> str:
    return f"{enc.name}-{enc.fingerprint()[:16]}"


def _finish(enc: Encoder, keys: list[str | None], cache: FeatureCache,
            missing_reason: dict[int, str], computed: int, hits: int, seconds: float,
            n_total: int, extra: dict[str, Any]) -> ModalityResult:
    """Assemble (S, dim) vectors + mask from the cache (every present key is cached by now)."""
    vectors = np.zeros((n_total, enc.dim), np.float32)
    mask = np.zeros(n_total, bool)
    rows = [i for i, k in enumerate(keys) if k is not None and i not in missing_reason]
    for i in rows:
        reason = cache.missing_reason(keys[i])
        if reason is not None:
            missing_reason[i] = reason
    rows = [i for i in rows if i not in missing_reason]
    if rows:
        vectors[rows] = cache.get_many([keys[i] for i in rows])
        mask[rows] = True
    cache.flush_index()
    reasons = Counter(_reason_kind(r) for r in missing_reason.values())
    summary = {
        "encoder": enc.describe(),
        "segments": n_total,
        "present": int(mask.sum()),
        "missing": int(n_total - mask.sum()),
        "missing_reasons": dict(sorted(reasons.items())),
        "cache_hits": hits,
        "computed": computed,
        "model_loaded": enc.loaded,
        "seconds": round(seconds, 3),
        "segments_per_second": round(n_total / seconds, 2) if seconds > 0 else None,
        **extra,
    }
    return ModalityResult(vectors, mask, summary)


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


# ------------------------------------------------------------------------------------- text
def embed_text(segments: pd.DataFrame, enc: Encoder, cache_dir: str | Path,
               progress: bool = True) -> ModalityResult:
    """Text vectors of every segment (empty text -> missing)."""
    t0 = time.perf_counter()
    n = len(segments)
    fp = enc.fingerprint()
    cache = FeatureCache(cache_dir, _namespace(enc), enc.dim, enc.describe())
    texts = ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
             for t in segments["text"]]
    keys: list[str | None] = []
    missing_reason: dict[int, str] = {}
    for i, t in enumerate(texts):
        reason = enc.usable(t)
        if reason is not None:
            missing_reason[i] = reason
            keys.append(None)
        else:
            keys.append(text_key(fp, t))
    todo, hits = _pending(keys, cache)
    labels = _labels(segments)
    if todo:
        order = list(todo.items())
        prepared = {k: enc.prepare(texts[i]) for k, i in order}
        order.sort(key=lambda ki: enc.length(prepared[ki[0]]))
        with _progress(len(order), f"text:{enc.name}", progress) as bar:
            for b in range(0, len(order), enc.batch_size):
                chunk = order[b:b + enc.batch_size]
                vecs = enc.encode_prepared([prepared[k] for k, _ in chunk])
                check_finite(vecs, [labels[i] for _, i in chunk], enc.name)
                cache.put([k for k, _ in chunk], vecs)
                bar.update(len(chunk))
    return _finish(enc, keys, cache, missing_reason, len(todo), hits,
                   time.perf_counter() - t0, n, {})


# ------------------------------------------------------------------------------------ audio
_DONE = object()


def _pending(keys: list[str | None], cache) -> tuple[dict[str, int], int]:
    """Keys to compute (each mapped to the first row needing it) and the number of cache hits.

    ``None`` keys (segments missing in this modality) are skipped; a key shared by several rows
    (identical content) is computed once.
    """
    todo: dict[str, int] = {}
    hits = 0
    for i, k in enumerate(keys):
        if k is None:
            continue
        if k in cache:
            hits += 1
        elif k not in todo:
            todo[k] = i
    return todo, hits


@dataclass
class _Job:
    key: str
    row: int
    prepared: Any = None
    length: int = 0
    reason: str | None = None  # set when the decoded audio is unusable (missing, cached as such)


def _read_groups(jobs: list[_Job], segments: pd.DataFrame, max_read_seconds: float
                 ) -> Iterator[tuple[str, list[_Job]]]:
    """Jobs grouped by (document, file) in table order, each group spanning <= max_read_seconds."""
    docs = segments["doc_id"].to_numpy()
    paths = segments["audio_path"].to_numpy()
    start = segments["audio_start"].to_numpy(np.float64)
    end = segments["audio_end"].to_numpy(np.float64)
    by_file: dict[tuple[Any, str], list[_Job]] = {}
    for j in jobs:
        by_file.setdefault((docs[j.row], paths[j.row]), []).append(j)
    for (_, path), group in by_file.items():
        group.sort(key=lambda j: start[j.row])
        cur: list[_Job] = []
        lo = hi = 0.0
        for j in group:
            s, e = start[j.row], end[j.row]
            if cur and max(hi, e) - lo > max_read_seconds:
                yield path, cur
                cur = []
            if not cur:
                lo, hi = s, e
            cur.append(j)
            hi = max(hi, e)
        if cur:
            yield path, cur


def _decode_group(path: str, group: list[_Job], segments: pd.DataFrame, rate: int,
                  labels: list[str]) -> list[tuple[_Job, np.ndarray]]:
    """Read the span covering ``group`` once; cut each segment exactly as load_audio would."""
    start = segments["audio_start"].to_numpy(np.float64)
    end = segments["audio_end"].to_numpy(np.float64)
    try:
        duration = audio_info(path)[0]
    except AudioError as exc:
        raise AudioError(f"{exc} (while reading {labels[group[0].row]})") from exc
    out = []
    inside = []
    for j in group:
        if start[j.row] >= duration:  # nothing to decode: missing, with its own reason
            out.append((j, np.zeros(0, np.float32)))
            j.reason = f"outside the audio file (span starts at {start[j.row]:.3f} s, " \
                       f"file ends at {duration:.3f} s)"
        else:
            inside.append(j)
    if not inside:
        return out
    lo = min(start[j.row] for j in inside)
    hi = min(max(end[j.row] for j in inside), duration)
    try:
        span, sr = load_audio(path, None, lo, hi)
    except AudioError as exc:
        raise AudioError(f"{exc} (while reading {labels[inside[0].row]})") from exc
    base = int(round(max(0.0, lo) * sr))
    for j in inside:
        s0 = int(round(max(0.0, start[j.row]) * sr)) - base
        s1 = int(round(end[j.row] * sr)) - base
        wav = span[s0:s1]
        out.append((j, resample(wav, sr, rate) if sr != rate else wav))
    return out


def embed_audio(segments: pd.DataFrame, enc: Encoder, cache_dir: str | Path,
                progress: bool = True, max_read_seconds: float = 600.0,
                pool_batches: int = 4) -> ModalityResult:
    """Audio vectors of every segment (too short / unusable audio -> missing, not an error)."""
    t0 = time.perf_counter()
    n = len(segments)
    fp = enc.fingerprint()
    cache = FeatureCache(cache_dir, _namespace(enc), enc.dim, enc.describe())
    hasher = FileHasher(cache.store.path("file_hashes.json"))
    labels = _labels(segments)
    start = segments["audio_start"].to_numpy(np.float64)
    end = segments["audio_end"].to_numpy(np.float64)
    min_seconds = getattr(enc, "min_seconds", 0.0)
    keys: list[str | None] = []
    missing_reason: dict[int, str] = {}
    file_sha: dict[str, str] = {}
    for i, path in enumerate(segments["audio_path"]):
        dur = end[i] - start[i]
        if dur < min_seconds:
            missing_reason[i] = f"too short ({dur:.3f} s < {min_seconds} s)"
            keys.append(None)
            continue
        if path not in file_sha:
            try:
                file_sha[path] = hasher.digest(path)
            except OSError as exc:
                raise AudioError(f"{path}: cannot read audio file ({exc}) for {labels[i]}") from exc
        keys.append(audio_key(fp, file_sha[path], float(start[i]), float(end[i])))
    hasher.save()
    todo, hits = _pending(keys, cache)
    decode_seconds = 0.0
    if todo:
        decode_seconds = _compute_audio([_Job(k, i) for k, i in todo.items()], segments, enc, cache, labels,
                                        progress, max_read_seconds, pool_batches)
    extra = {"files_hashed": hasher.files_hashed, "decode_prepare_seconds": round(decode_seconds, 3)}
    return _finish(enc, keys, cache, missing_reason, len(todo), hits,
                   time.perf_counter() - t0, n, extra)


class _AudioRun:
    """One audio embedding run: a producer thread decodes and prepares the segments file by file
    (:meth:`produce`); the calling thread pools them, encodes length-sorted batches and caches
    each batch as it is done (:meth:`consume`). ``decode_seconds`` is the producer's busy time."""

    def __init__(self, jobs: list[_Job], segments: pd.DataFrame, enc: Encoder,
                 cache: FeatureCache, labels: list[str], max_read_seconds: float,
                 pool_batches: int) -> None:
        self.jobs, self.segments, self.enc, self.cache = jobs, segments, enc, cache
        self.labels, self.max_read_seconds = labels, max_read_seconds
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, 2 * enc.batch_size))
        self.stop = threading.Event()
        self.decode_seconds = 0.0
        self.pool: list[_Job] = []
        self.pool_size = max(1, pool_batches) * enc.batch_size
        self.unusable: list[_Job] = []  # decoded but unusable: cached as "missing" with a chunk

    # ---- producer thread -------------------------------------------------------------------
    def produce(self) -> None:
        try:
            for path, group in _read_groups(self.jobs, self.segments, self.max_read_seconds):
                t = time.perf_counter()
                decoded = _decode_group(path, group, self.segments, self.enc.sample_rate,
                                        self.labels)
                for job, wav in decoded:
                    self._prepare(job, wav)
                self.decode_seconds += time.perf_counter() - t
                for job, _ in decoded:
                    if not self._put(job):
                        return
            self.queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self.queue.put(exc)

    def _prepare(self, job: _Job, wav) -> None:
        if job.reason is None:
            job.reason = self.enc.usable(wav)
        if job.reason is None:
            job.prepared = self.enc.prepare(wav)
            job.length = self.enc.length(job.prepared)

    def _put(self, job: _Job) -> bool:
        """Queue ``job``, waiting while the consumer is busy; False once the run is stopped."""
        while not self.stop.is_set():
            try:
                self.queue.put(job, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # ---- consumer (calling thread) -----------------------------------------------------------
    def _run_batch(self, batch: list[_Job]) -> None:
        vecs = self.enc.encode_prepared([j.prepared for j in batch])
        check_finite(vecs, [self.labels[j.row] for j in batch], self.enc.name)
        self.cache.put([j.key for j in batch], vecs, [(j.key, j.reason) for j in self.unusable])
        self.unusable.clear()
        for j in batch:
            j.prepared = None  # free memory early

    def _drain(self, bar, final: bool) -> None:
        bs = self.enc.batch_size
        self.pool.sort(key=lambda j: j.length)
        while self.pool and (final or len(self.pool) >= bs):
            # take batches from the long end first: the longest batch bounds peak memory
            batch = self.pool[-bs:]
            del self.pool[-len(batch):]
            self._run_batch(batch)
            bar.update(len(batch))
            if not final and len(self.pool) < self.pool_size // 2:
                break

    def consume(self, progress: bool) -> None:
        with _progress(len(self.jobs), f"audio:{self.enc.name}", progress) as bar:
            while True:
                item = self.queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if item.reason is not None:
                    self.unusable.append(item)
                    bar.update(1)
                    continue
                self.pool.append(item)
                if len(self.pool) >= self.pool_size:
                    self._drain(bar, final=False)
            self._drain(bar, final=True)
            if self.unusable:
                self.cache.put([], np.zeros((0, self.enc.dim), np.float32),
                               [(j.key, j.reason) for j in self.unusable])


def _compute_audio(jobs: list[_Job], segments: pd.DataFrame, enc: Encoder, cache: FeatureCache,
                   labels: list[str], progress: bool, max_read_seconds: float,
                   pool_batches: int) -> float:
    """Decode + prepare in a producer thread, encode sorted batches here, cache each batch;
    return the producer's busy seconds."""
    run = _AudioRun(jobs, segments, enc, cache, labels, max_read_seconds, pool_batches)
    worker = threading.Thread(target=run.produce, name="embedding-audio-decode", daemon=True)
    worker.start()
    try:
        run.consume(progress)
    finally:
        run.stop.set()
        worker.join(timeout=30)
    return run.decode_seconds


# ----------------------------------------------------------------------------------- both
def embed_segments(segments: pd.DataFrame, audio_encoder: Encoder | None,
                   text_encoder: Encoder | None, cache_dir: str | Path, progress: bool = True,
                   source: str = "segments", max_read_seconds: float = 600.0,
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Embed every segment in both modalities; returns ``(segment_features, summary)``.

    ``segment_features`` follows docs/CONTRACTS.md. A modality whose encoder is ``None`` is
    switched off: its array has 0 columns and its mask is all False.
    """
    validate_segments(segments, source)
    segments = segments.reset_index(drop=True)
    t0 = time.perf_counter()
    n = len(segments)
    results: dict[str, ModalityResult] = {}
    meta: dict[str, Any] = {}
    if audio_encoder is not None and audio_encoder.modality != "audio":
        raise EncoderError(f"audio_encoder {audio_encoder.name!r} is a {audio_encoder.modality} "
                           "encoder")
    if text_encoder is not None and text_encoder.modality != "text":
        raise EncoderError(f"text_encoder {text_encoder.name!r} is a {text_encoder.modality} "
                           "encoder")
    for modality, enc in (("audio", audio_encoder), ("text", text_encoder)):
        if enc is None:
            results[modality] = ModalityResult(np.zeros((n, 0), np.float32), np.zeros(n, bool),
                                               {"encoder": None, "segments": n, "present": 0,
                                                "missing": n, "missing_reasons": {"disabled": n}})
            meta[f"{modality}_encoder"] = None
            continue
        if modality == "audio":
            results[modality] = embed_audio(segments, enc, cache_dir, progress, max_read_seconds)
        else:
            results[modality] = embed_text(segments, enc, cache_dir, progress)
        d = enc.describe()
        meta[f"{modality}_encoder"] = {k: d[k] for k in ("name", "dim", "options", "version")}
    seconds = time.perf_counter() - t0
    features = {
        "index": pd.DataFrame({"doc_id": segments["doc_id"].to_numpy(),
                               "seg_idx": segments["seg_idx"].to_numpy()}),
        "audio": results["audio"].vectors,
        "text": results["text"].vectors,
        "audio_mask": results["audio"].mask,
        "text_mask": results["text"].mask,
        "meta": meta,
    }
    summary = {
        "segments": n,
        "documents": int(segments["doc_id"].nunique()),
        "seconds": round(seconds, 3),
        "segments_per_second": round(n / seconds, 2) if seconds > 0 else None,
        "cache_hits": sum(r.summary.get("cache_hits", 0) for r in results.values()),
        "cache_misses": sum(r.summary.get("computed", 0) for r in results.values()),
        "audio": results["audio"].summary,
        "text": results["text"].summary,
    }
    return features, summary

