"""Offline speech synthesis with espeak-ng into a corpus in the project's layout (docs/corpus.md).

``synthesize_corpus`` turns a list of documents (each a list of sentences) into a corpus folder:
``manifest.csv``, one 16 kHz mono FLAC per document and a transcript with the *real* timestamps of
each sentence inside that recording. It is used by the ``demo_data`` pipeline (State of the Union)
and by tests that need real speech with exact timestamps.

Choices made here:

- espeak-ng runs once per sentence (a subprocess writing WAV to stdout): it is ~250x faster than
  real time, so the per-call overhead (a few ms) is negligible and each sentence's exact length is
  known without forced alignment.
- The leading/trailing near-silence espeak-ng adds around each sentence is trimmed, so a cue's
  ``[start, end)`` covers the spoken sentence; sentences are joined by pauses whose lengths are
  drawn from ``seed`` (uniform in ``pause``), so timestamps are not a trivial grid. Voice, rate and
  pauses never depend on the label.
- The folder is built resumably: a marker file holds a hash of every input; rerunning with the same
  inputs reuses the finished files, different inputs rebuild the folder from scratch. Every file is
  written atomically and ``manifest.csv`` is written last, so an interrupted build never looks like
  a complete corpus.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import struct
import subprocess
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from hilbert_pipeline.audio import resample
from hilbert_pipeline.corpus.webvtt import format_timestamp
from hilbert_pipeline.errors import UserError
from hilbert_pipeline.utils import atomic_path, write_json

logger = logging.getLogger(__name__)

TRANSCRIPT_FORMATS = ("json", "vtt", "srt", "tsv", "txt")
MARKER = ".synthesis.json"
#: samples with an absolute value below this count as silence when trimming espeak-ng's edges
_SILENCE = 1e-3
_INSTALL_HINT = "install it with: sudo apt-get install -y espeak-ng"
#: optional per-document keys that override the corpus-wide speaking style
STYLE_KEYS = ("voice", "rate", "pitch")


class SynthesisError(UserError):
    """espeak-ng is missing or failed, or the documents given to synthesise are invalid."""


def find_espeak() -> str:
    """Return the path of espeak-ng or raise a ``SynthesisError`` saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthesisError(f"espeak-ng was not found on PATH; {_INSTALL_HINT}")
    return exe


def _parse_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode the 16-bit PCM WAV espeak-ng writes to stdout.

    Its header carries placeholder sizes (the length is unknown while streaming), which soundfile
    rejects, so the RIFF chunks are walked here and the ``data`` chunk is cut to what was received.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesisError("espeak-ng did not produce a WAV stream")
    pos, rate, channels, bits = 12, None, 1, 16
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body:body + 16])
        elif cid == b"data":
            payload = data[body:min(len(data), body + size)]
            if rate is None or bits != 16:
                raise SynthesisError(f"unexpected espeak-ng WAV format (rate={rate}, bits={bits})")
            payload = payload[: len(payload) - len(payload) % (2 * channels)]
            x = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
            if channels > 1:
                x = x.reshape(-1, channels).mean(axis=1)
            return x, int(rate)
        pos = body + size + (size & 1)
    raise SynthesisError("espeak-ng WAV stream has no data chunk")


def synthesize_sentence(
    text: str, voice: str = "en-us", rate: int = 175, exe: str | None = None,
    pitch: int | None = None,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; return ``(mono float32 samples, sample rate)``, edges trimmed.

    ``pitch``: espeak-ng's base pitch 0-99 (None: the voice's own, 50)."""
    exe = exe or find_espeak()
    text = " ".join(str(text).split())
    if not text:
        raise SynthesisError("cannot synthesise an empty sentence")
    pitch_opt = [] if pitch is None else ["-p", str(int(pitch))]
    # "--" ends the options, so a sentence starting with "-" is not read as a flag.
    cmd = [exe, "-v", str(voice), "-s", str(int(rate)), *pitch_opt, "--stdout", "--", text]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise SynthesisError(f"espeak-ng could not be started ({exc}); {_INSTALL_HINT}") from exc
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise SynthesisError(
            f"espeak-ng failed (exit {proc.returncode}) for voice {voice!r}: {err or 'no output'}")
    x, sr = _parse_wav_bytes(proc.stdout)
    loud = np.flatnonzero(np.abs(x) > _SILENCE)
    if loud.size == 0:
        raise SynthesisError(f"espeak-ng produced silence for {text[:60]!r}")
    return x[loud[0]: loud[-1] + 1], sr


#: (sentence, voice, rate, pitch, sample rate) -> samples: corpora that reuse sentences (the
#: quality benchmark's long documents) run espeak-ng once per distinct spoken sentence
_SPOKEN: dict[tuple, np.ndarray] = {}


def _spoken(sentence: str, voice: str, rate: int, pitch: int | None, exe: str,
            sample_rate: int) -> np.ndarray:
    key = (sentence, voice, rate, pitch, sample_rate)
    x = _SPOKEN.get(key)
    if x is None:
        raw, sr = synthesize_sentence(sentence, voice, rate, exe, pitch)
        x = resample(raw, sr, sample_rate)
        if len(_SPOKEN) >= 8192:
            _SPOKEN.pop(next(iter(_SPOKEN)))
        _SPOKEN[key] = x
    return x


def _stable_seed(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])


def _transcript_text(cues: list[tuple[float, float, str]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"segments": [
            {"start": round(a, 3), "end": round(b, 3), "text": t} for a, b, t in cues]}, indent=1)
    if fmt == "vtt":
        blocks = ["WEBVTT"] + [
            f"{i}\n{format_timestamp(a, '.')} --> {format_timestamp(b, '.')}\n{t}"
            for i, (a, b, t) in enumerate(cues, 1)]
        return "\n\n".join(blocks) + "\n"
    if fmt == "srt":
        return "\n\n".join(
            f"{i}\n{format_timestamp(a, ',')} --> {format_timestamp(b, ',')}\n{t}"
            for i, (a, b, t) in enumerate(cues, 1)) + "\n"
    if fmt == "tsv":
        return "".join(f"{a:.3f}\t{b:.3f}\t{t}\n" for a, b, t in cues)
    raise SynthesisError(f"unknown transcript format {fmt!r}")


def _check_documents(documents: Sequence[dict]) -> list[dict]:
    docs, seen = [], set()
    for i, d in enumerate(documents):
        if not isinstance(d, dict) or "doc_id" not in d or "sentences" not in d:
            raise SynthesisError(f"document #{i}: needs keys 'doc_id' and 'sentences'")
        doc_id = str(d["doc_id"])
        if not doc_id or doc_id in seen or any(c in doc_id for c in "/\\\0") or doc_id[0] == ".":
            raise SynthesisError(f"document #{i}: doc_id {doc_id!r} is empty, repeated or not a "
                                 "safe file name")
        seen.add(doc_id)
        sentences = [" ".join(str(s).split()) for s in d["sentences"]]
        if not sentences or any(not s for s in sentences):
            raise SynthesisError(f"document {doc_id!r}: sentences must be a non-empty list of "
                                 "non-empty strings")
        group = d.get("group")
        style = {k: d[k] for k in STYLE_KEYS if d.get(k) is not None}
        for k in ("rate", "pitch"):
            if k in style and (not isinstance(style[k], int | np.integer) or style[k] < 0):
                raise SynthesisError(f"document {doc_id!r}: {k} must be a non-negative integer, "
                                     f"got {style[k]!r}")
        styles = d.get("styles")
        if styles is not None:
            if not isinstance(styles, list | tuple) or len(styles) != len(sentences) or any(
                    s is not None and (not isinstance(s, dict) or set(s) - set(STYLE_KEYS))
                    for s in styles):
                raise SynthesisError(f"document {doc_id!r}: styles must be a list with one entry "
                                     f"per sentence, each None or a dict of {list(STYLE_KEYS)}")
            styles = [None if s is None else dict(s) for s in styles]
        extra = {str(k): "" if v is None else str(v) for k, v in d.items()
                 if k not in ("doc_id", "label", "group", "sentences", "styles", *STYLE_KEYS)}
        docs.append({"doc_id": doc_id, "label": "" if d.get("label") is None else str(d["label"]),
                     "group": None if group is None else str(group), "sentences": sentences,
                     **({"styles": styles} if styles is not None else {}), "extra": extra, **{k: (v if k == "voice" else int(v))
                                        for k, v in style.items()}})
    if not docs:
        raise SynthesisError("no documents to synthesise")
    return docs


def _doc_paths(doc_id: str, fmt: str) -> tuple[str, str]:
    if fmt == "txt":
        return f"audio/{doc_id}", f"transcripts/{doc_id}.txt"
    return f"audio/{doc_id}.flac", f"transcripts/{doc_id}.{fmt}"


def _synthesize_document(
    out: Path, doc: dict, exe: str, voice: str, rate: int, sample_rate: int, fmt: str, seed: int,
    pause: tuple[float, float],
) -> dict:
    """Write one document's audio and transcript (atomically); return its duration in seconds."""
    rng = _stable_seed(seed, doc["doc_id"])
    audio_rel, tr_rel = _doc_paths(doc["doc_id"], fmt)
    pieces = []
    base = {"voice": doc.get("voice", voice), "rate": doc.get("rate", rate),
            "pitch": doc.get("pitch")}
    for sentence, style in zip(doc["sentences"], doc.get("styles") or [None] * len(
            doc["sentences"]), strict=True):
        st = {**base, **(style or {})}
        pieces.append(_spoken(sentence, st["voice"], int(st["rate"]), st["pitch"], exe,
                              sample_rate))
    if fmt == "txt":
        clip_dir = out / audio_rel
        clip_dir.mkdir(parents=True, exist_ok=True)
        for k, x in enumerate(pieces, 1):
            # clips named so that lexicographic and natural order differ (x_2 vs x_10)
            with atomic_path(clip_dir / f"{doc['doc_id']}_{k}.flac") as tmp:
                sf.write(str(tmp), np.clip(x, -1, 1), sample_rate, format="FLAC")
        with atomic_path(out / tr_rel) as tmp:
            tmp.write_text("".join(s + "\n" for s in doc["sentences"]), encoding="utf-8")
        return {"duration": float(sum(len(x) for x in pieces) / sample_rate)}
    lead = int(round(rng.uniform(*pause) * sample_rate))
    chunks, cues, pos = [np.zeros(lead, np.float32)], [], lead
    for k, (x, text) in enumerate(zip(pieces, doc["sentences"], strict=True)):
        cues.append((pos / sample_rate, (pos + len(x)) / sample_rate, text))
        chunks.append(x)
        pos += len(x)
        gap = int(round(rng.uniform(*pause) * sample_rate))
        if k == len(pieces) - 1:
            gap = lead
        chunks.append(np.zeros(gap, np.float32))
        pos += gap
    wave = np.clip(np.concatenate(chunks), -1.0, 1.0)
    with atomic_path(out / audio_rel) as tmp:
        sf.write(str(tmp), wave, sample_rate, format="FLAC", subtype="PCM_16")
    with atomic_path(out / tr_rel) as tmp:
        tmp.write_text(_transcript_text(cues, fmt), encoding="utf-8")
    return {"duration": len(wave) / sample_rate}


def params_hash(payload: dict) -> str:
    """SHA-256 of a JSON-serialisable dict (stable key order)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def synthesize_corpus(
    out_dir: str | Path,
    documents: Sequence[dict],
    voice: str = "en-us",
    rate: int = 175,
    sample_rate: int = 16000,
    transcript_format: str = "json",
    seed: int = 0,
    *,
    pause: tuple[float, float] = (0.25, 0.6),
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Synthesise ``documents`` with espeak-ng into a corpus folder; return ``out_dir``.

    ``documents``: dicts ``{"doc_id", "label", "sentences": list[str], "group" (optional)}``;
    optional ``voice``/``rate``/``pitch`` override the corpus-wide speaking style for that
    document, and an optional ``styles`` list (one entry per sentence: None or a dict of those
    keys) overrides it for single sentences (the quality benchmark's speaking-style corpora); any
    other keys become extra manifest columns (the corpus loader ignores them).
    Writes ``manifest.csv`` (doc_id, label, audio, transcript[, group]), ``audio/<doc_id>.flac``
    (``sample_rate`` Hz, mono) and ``transcripts/<doc_id>.<transcript_format>`` with one cue per
    sentence (``json``, ``vtt``, ``srt`` or ``tsv``). ``transcript_format="txt"`` writes instead a
    clip folder ``audio/<doc_id>/<doc_id>_<k>.flac`` (one clip per sentence) and a ``.txt`` with one
    line per clip. ``seed`` draws the pauses between sentences (uniform in ``pause`` seconds).
    ``workers`` > 1 synthesises documents in parallel threads (each runs espeak-ng subprocesses).

    The same inputs reuse an existing complete folder; different inputs rebuild it. A non-empty
    ``out_dir`` that was not made by this function is refused rather than overwritten.
    """
    from tqdm.auto import tqdm

    fmt = str(transcript_format).lower().lstrip(".")
    if fmt not in TRANSCRIPT_FORMATS:
        raise SynthesisError(f"transcript_format must be one of {TRANSCRIPT_FORMATS}, got {fmt!r}")
    if int(sample_rate) <= 0 or int(rate) <= 0:
        raise SynthesisError(f"sample_rate and rate must be positive (got {sample_rate}, {rate})")
    lo, hi = float(pause[0]), float(pause[1])
    if not 0 <= lo <= hi:
        raise SynthesisError(f"pause must be (min, max) with 0 <= min <= max, got {pause}")
    docs = _check_documents(documents)
    exe = find_espeak()
    out = Path(out_dir)
    digest = params_hash({"documents": docs, "voice": voice, "rate": int(rate), "seed": int(seed),
                          "sample_rate": int(sample_rate), "format": fmt, "pause": [lo, hi],
                          "version": 1})
    marker = out / MARKER
    state = json.loads(marker.read_text()) if marker.is_file() else None
    if state is not None and state.get("hash") == digest and state.get("complete"):
        if (out / "manifest.csv").is_file() and all(
                (out / p).exists() for d in docs for p in _doc_paths(d["doc_id"], fmt)):
            logger.info("synthesised corpus in %s is up to date (hash %s); reusing it", out,
                        digest[:12])
            return out
    if out.exists() and any(out.iterdir()):
        if state is None:
            raise SynthesisError(
                f"{out} is not empty and was not created by synthesize_corpus; refusing to "
                "overwrite it (choose another output folder or empty it)")
        if state.get("hash") != digest:
            logger.info("synthesis inputs changed: rebuilding %s", out)
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"hash": digest, "complete": False})

    def one(doc: dict) -> dict:
        audio_rel, tr_rel = _doc_paths(doc["doc_id"], fmt)
        done = out / f"audio/.{doc['doc_id']}.done"
        if done.is_file() and (out / audio_rel).exists() and (out / tr_rel).is_file():
            return json.loads(done.read_text())  # resumed: this document was finished before
        info = _synthesize_document(out, doc, exe, voice, int(rate), int(sample_rate), fmt,
                                    int(seed), (lo, hi))
        write_json(done, info)
        return info

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        infos = list(tqdm(pool.map(one, docs), total=len(docs), disable=not progress,
                          desc="synthesising documents", unit="doc"))
    has_group = any(d["group"] is not None for d in docs)
    extra_cols = list(dict.fromkeys(k for d in docs for k in d["extra"]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["doc_id", "label", "audio", "transcript"] + (["group"] if has_group else [])
                    + extra_cols)
    for d in docs:
        row = [d["doc_id"], d["label"], *_doc_paths(d["doc_id"], fmt)]
        row += [d["group"] or ""] if has_group else []
        writer.writerow(row + [d["extra"].get(k, "") for k in extra_cols])
    for d in docs:
        (out / f"audio/.{d['doc_id']}.done").unlink(missing_ok=True)
    with atomic_path(out / "manifest.csv") as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    write_json(marker, {"hash": digest, "complete": True, "n_documents": len(docs),
                        "total_duration_s": round(sum(i["duration"] for i in infos), 3)})
    return out
