"""Transcribe the recordings of a corpus that came without a transcript (docs/corpus.md,
"Recordings without transcripts").

For every manifest row with audio and an empty ``transcript`` cell, :func:`transcribe_corpus`
writes a transcript into ``output_dir``: ``<doc_id>.vtt`` for one recording (one cue per
sentence, real timestamps) or ``<doc_id>.txt`` for a clip folder (one line per clip, clips in
natural order). Validation then reads it as if the user had given it (``generated_transcript``).
A transcript the user gave is never read, touched or replaced. Results are cached by the audio's
content, the model and the options, so a second run (or another corpus holding the same file)
costs nothing. A recording that cannot be read or transcribed is reported and the others go on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from hilbert_pipeline.audio import AudioError, load_audio
from hilbert_pipeline.corpus.manifest import (
    ManifestError,
    list_clips,
    read_manifest,
    transcript_name,
)
from hilbert_pipeline.corpus.webvtt import format_timestamp
from hilbert_pipeline.encoders.base import file_digest
from hilbert_pipeline.transcribe.whisper import (
    SAMPLE_RATE,
    TranscribeError,
    TranscribeOptions,
    WhisperTranscriber,
    diarize,
)
from hilbert_pipeline.utils import atomic_path, torch_threads

logger = logging.getLogger(__name__)

def vtt_text(cues: list[tuple[float, float, str]], note: str,
             speakers: list[str] | None = None) -> str:
    """A WebVTT file of ``cues`` (with ``<v Speaker>`` spans when ``speakers`` are given) and a
    NOTE saying where it came from."""
    names = speakers or [None] * len(cues)
    body = "".join(f"{format_timestamp(a)} --> {format_timestamp(b)}\n" + (f"<v {s}>{t}</v>" if s else t) + "\n\n"
                   for (a, b, t), s in zip(cues, names, strict=True))
    return f"WEBVTT\n\nNOTE {note}\n\n{body}"


def transcribe_corpus(corpus: str | Path, output_dir: str | Path, options: TranscribeOptions,
                      cache_dir: str | Path | None = None, progress: bool = False,
                      client=None) -> dict:
    """Transcribe every recording of ``corpus`` whose manifest row has no transcript.

    Returns a JSON-able report: ``transcribed`` (doc_id → file, cues, from cache or not),
    ``failed`` (doc_id → reason), ``given`` (how many rows had a transcript), the options, the
    seconds of audio and of compute and their ratio (real-time factor). The model is loaded only
    when something needs transcribing. ``client``: a ``distributed.Client``; the recordings to
    transcribe are then spread over its workers (each loads the model once), and the results
    are written here, exactly as in one process."""
    from tqdm.auto import tqdm

    corpus = Path(corpus).expanduser().resolve()
    out = Path(output_dir)
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    report: dict[str, Any] = {"corpus": str(corpus), "output_dir": str(out), "given": 0,
                              "transcribed": {}, "failed": {}, "options": None,
                              "audio_seconds": 0.0, "compute_seconds": 0.0, "rtf": None}
    try:
        rows, _ = read_manifest(corpus / "manifest.csv", label_column=False)
    except ManifestError:
        return report  # validation reports the manifest itself, with every other problem
    todo = [r for r in rows if r.audio and not r.transcript and r.doc_id]
    report["given"] = len(rows) - len(todo)
    if not todo:
        return report
    identity = options.identity()
    report["options"] = identity
    key_base = json.dumps(identity, sort_keys=True)
    jobs: list[dict] = []
    for r in todo:  # what each document needs (hashing here: the cache decides what to compute)
        audio = Path(r.audio).expanduser()
        audio = (audio if audio.is_absolute() else corpus / audio).resolve()
        try:
            clips = list_clips(audio)[0] if audio.is_dir() else [audio]
            if not clips:
                raise AudioError(f"{audio}: clip folder holds no audio clips")
            for c in clips:
                if not c.is_file():
                    raise AudioError(f"{c}: audio file not found")
            suffix = ".txt" if audio.is_dir() else ".vtt"
            content = "".join(file_digest(c) for c in clips)
            key = hashlib.sha1((key_base + content).encode()).hexdigest()
        except (AudioError, OSError) as exc:
            _fail(report, r, exc)
            continue
        jobs.append({"row": r, "audio": audio, "clips": clips, "cached": cache / f"{key}{suffix}",
                     "target": out / transcript_name(r.doc_id, suffix)})
    fresh = [j for j in jobs if not j["cached"].is_file()]
    bar = tqdm(total=len(fresh), desc="transcribing", unit="doc", disable=not progress)
    for job, result in _run(fresh, options, client):
        bar.update(1)
        if isinstance(result, TranscribeError):
            raise result  # the model or the options: every recording would fail the same way
        if isinstance(result, Exception):
            _fail(report, job["row"], result)
            continue
        text, job["cues"], seconds, compute, device = result
        report["device"] = device
        report["audio_seconds"] += seconds
        report["compute_seconds"] += compute
        with atomic_path(job["cached"]) as tmp:
            tmp.write_text(text, encoding="utf-8")
        job["fresh"] = True
    bar.close()
    for job in jobs:
        if not job["cached"].is_file():
            continue  # failed above
        with atomic_path(job["target"]) as tmp:
            shutil.copyfile(job["cached"], tmp)
        entry = {"file": str(job["target"]), "cache": not job.get("fresh", False)}
        if "cues" in job:
            entry["cues"] = job["cues"]
        report["transcribed"][job["row"].doc_id] = entry
    if report["audio_seconds"] > 0:
        report["rtf"] = round(report["compute_seconds"] / report["audio_seconds"], 4)
    report["audio_seconds"] = round(report["audio_seconds"], 3)
    report["compute_seconds"] = round(report["compute_seconds"], 3)
    return report


def _fail(report: dict, row, exc: BaseException) -> None:
    reason = str(exc) if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"
    report["failed"][row.doc_id] = reason
    logger.warning("transcription of %r (manifest row %d) failed: %s", row.doc_id, row.row,
                   reason)


def _run(jobs: list[dict], options: TranscribeOptions, client):
    """``(job, result or exception)`` for every job: here, in order, or on the Dask workers as
    they finish."""
    if client is None:
        for job in jobs:
            yield job, _compute(job["audio"], job["clips"], options)
        return
    from distributed import as_completed

    futures = {client.submit(_compute, j["audio"], j["clips"], options, pure=False): j
               for j in jobs}
    for fut in as_completed(futures):
        yield futures[fut], fut.result()


@functools.lru_cache(maxsize=2)
def _model(options: TranscribeOptions) -> WhisperTranscriber:
    """One loaded model per process and options (Dask workers keep theirs between tasks)."""
    return WhisperTranscriber(options)


def _compute(audio: Path, clips: list[Path], options: TranscribeOptions):
    """(file text, cues or lines, seconds of audio, seconds of compute, device), or the
    exception that stopped it (returned, so that one bad recording never stops the rest)."""
    try:
        model = _model(options)
        # fixed thread counts, whatever the process: CTranslate2's int8 kernels give other
        # numbers with another OpenMP thread count (measured: 0.009 on the encoder states), so
        # the same transcript in this process and on a Dask worker
        from threadpoolctl import threadpool_limits

        with torch_threads(1), threadpool_limits(max(1, int(options.cpu_threads))):
            return (*_transcribe(model, audio, clips), model.device)
    except Exception as exc:  # noqa: BLE001 - reported per document by the caller
        return exc


def _transcribe(model: WhisperTranscriber, audio: Path, clips: list[Path]
                ) -> tuple[str, int, float, float]:
    """(file text, number of cues or lines, seconds of audio, seconds of compute)."""
    t0 = time.perf_counter()
    if not audio.is_dir():
        x, _ = load_audio(audio, SAMPLE_RATE)
        cues = model.transcribe(x)
        o = model.options
        speakers = diarize(x, cues, o.n_speakers) if o.diarize else None
        note = (f"transcribed by hilbert_pipeline (Whisper) from {audio.name}"
                + ("; speakers by voice clustering (approximate)" if speakers else ""))
        return (vtt_text(cues, note, speakers), len(cues), len(x) / SAMPLE_RATE,
                time.perf_counter() - t0)
    lines, seconds = [], 0.0
    for c in clips:
        x, _ = load_audio(c, SAMPLE_RATE)
        seconds += len(x) / SAMPLE_RATE
        lines.append(" ".join(t for _, _, t in model.transcribe(x)))
    return "\n".join(lines) + "\n", len(lines), seconds, time.perf_counter() - t0
