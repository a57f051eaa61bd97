"""A tiny real-speech corpus (espeak-ng) as a ``segments`` table in the CONTRACTS.md format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

torch.set_num_threads(1)

SENTENCES = {
    "d1": ("en-us+m3", ["The state of the union is strong.",
                        "We must balance the budget this year.",
                        "Our army and navy stand ready."]),
    "d2": ("en-us+f3", ["Trade with other nations has grown.",
                        "The people have spoken clearly.",
                        "Thank you and good night."]),
}


def write_recording(espeak: str, folder: Path, doc_id: str, voice: str, sentences: list[str],
                    gap: float = 0.2) -> tuple[Path, list[tuple[float, float, str]]]:
    """One wav per document: sentences spoken by ``voice`` separated by ``gap`` s of silence."""
    pieces, spans, t, sr = [], [], 0.0, 22050
    for i, text in enumerate(sentences):
        part = folder / f"{doc_id}_{i}.wav"
        subprocess.run([espeak, "-v", voice, "-s", "175", "-w", str(part), text], check=True)
        x, sr = sf.read(part, dtype="float32")
        part.unlink()
        pieces += [x, np.zeros(int(gap * sr), np.float32)]
        spans.append((t, t + len(x) / sr, text))
        t += len(x) / sr + gap
    path = folder / f"{doc_id}.wav"
    sf.write(path, np.concatenate(pieces), sr)
    return path, spans


@pytest.fixture
def make_segments(espeak: str, tmp_path: Path):
    """``make_segments(sentences=SENTENCES)`` -> segments DataFrame over fresh recordings."""

    def make(sentences: dict = SENTENCES, folder: Path | None = None) -> pd.DataFrame:
        folder = folder or tmp_path / "audio"
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for doc_id, (voice, texts) in sentences.items():
            path, spans = write_recording(espeak, folder, doc_id, voice, texts)
            for i, (s, e, text) in enumerate(spans):
                rows.append({"doc_id": doc_id, "seg_idx": i, "start": s, "end": e,
                             "duration": e - s, "text": text, "audio_path": str(path.resolve()),
                             "audio_start": s, "audio_end": e})
        return pd.DataFrame(rows)

    return make


@pytest.fixture
def rerecord(espeak: str, tmp_path: Path):
    """``rerecord(doc_id, voice)``: overwrite a document's recording, same words, new voice."""

    def redo(doc_id: str, voice: str, folder: Path | None = None) -> Path:
        return write_recording(espeak, folder or tmp_path / "audio", doc_id, voice,
                               SENTENCES[doc_id][1])[0]

    return redo
