"""Audio I/O through soundfile: decode (a span of) a file, mix to mono, resample with torchaudio.

soundfile reads wav, flac, ogg/vorbis and (libsndfile >= 1.1) mp3. torchaudio.load is not used: it
now needs torchcodec and a system FFmpeg, which this project does not require.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf

from hilbert_pipeline.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(UserError):
    """An audio file is missing, unreadable or the requested span is invalid."""


def audio_info(path: str | Path) -> tuple[float, int, int]:
    """Return ``(duration_seconds, sample_rate, channels)`` without decoding the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes; an interrupted copy or download?)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    if info.samplerate <= 0 or info.frames < 0:
        raise AudioError(f"{path}: invalid header (rate={info.samplerate}, frames={info.frames})")
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` (optionally only ``[start, end)`` seconds), mix to mono, resample.

    Returns ``(samples, rate)``: a 1-D float32 array in [-1, 1] and its sample rate (``sample_rate``
    when given, else the file's own). Only the requested span is read from disk, so memory stays
    bounded for hour-long recordings.
    """
    path = Path(path)
    duration, sr, _ = audio_info(path)
    s0 = 0 if start is None else int(round(max(0.0, start) * sr))
    s1 = None if end is None else int(round(end * sr))
    if s1 is not None and s1 < s0:
        raise AudioError(f"{path}: segment end {end} is before its start {start}")
    try:
        data, file_sr = sf.read(str(path), start=s0, stop=s1, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: decoded samples contain NaN or inf (a damaged floating-point "
                         "file; re-export the recording, e.g. as 16-bit PCM with ffmpeg)")
    if sample_rate is not None and sample_rate != file_sr:
        mono = resample(mono, file_sr, sample_rate)
        file_sr = sample_rate
    return mono, int(file_sr)


@functools.lru_cache(maxsize=16)
def _resampler(orig: int, new: int):
    import torchaudio

    return torchaudio.transforms.Resample(orig_freq=orig, new_freq=new)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited (windowed sinc) resampling with torchaudio; float32 in, float32 out."""
    if orig_sr == new_sr or x.size == 0:
        return np.asarray(x, dtype=np.float32)
    import torch

    with torch.inference_mode():
        y = _resampler(int(orig_sr), int(new_sr))(torch.from_numpy(np.asarray(x, np.float32)))
    return y.numpy().astype(np.float32, copy=False)
