"""Text encoders: packaged MiniLM and local Hugging Face folders (tiny random models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilbert_pipeline.encoders import get_encoder


@pytest.fixture(scope="module")
def minilm():
    return get_encoder("minilm", device="cpu", batch_size=8)


def test_minilm_paraphrase_closer_than_unrelated(minilm):
    v = minilm.encode(["A man is playing a guitar.", "Someone plays the guitar.",
                       "The national debt rose sharply last year."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2] + 0.3


def test_minilm_batching_does_not_change_vectors(minilm):
    texts = ["Short.", "A somewhat longer sentence about the union and its states.", "Mid one."]
    together = minilm.encode(texts)
    alone = np.stack([minilm.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_minilm_empty_text_is_unusable_and_long_text_uses_windows(minilm):
    assert minilm.usable("") == "empty text" and minilm.usable("   ") == "empty text"
    assert minilm.usable("ok") is None
    long_text = " ".join(["freedom and prosperity for every citizen"] * 80)  # > 256 tokens
    windows = minilm.prepare(long_text)
    assert len(windows) >= 2 and all(len(w) <= 256 for w in windows)
    v = minilm.encode([long_text])
    assert np.isfinite(v).all() and abs(np.linalg.norm(v) - 1) < 1e-5


def test_hf_text_tiny_bert_mean_pooling_matches_manual(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    enc = get_encoder("hf-text", path=str(tiny_bert_dir), device="cpu")
    assert enc.dim == 16 and not enc.loaded
    texts = ["the state of the union is strong .", "we must trade", "a navy"]
    out = enc.encode(texts)
    assert enc.loaded and out.shape == (3, 16)
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    for t, row in zip(texts, out, strict=True):
        ids = tok(t, return_tensors="pt")
        with torch.no_grad():
            h = model(**ids).last_hidden_state[0]
        np.testing.assert_allclose(row, h.mean(0).numpy(), atol=1e-5)


def test_hf_text_long_text_pools_over_all_windows(tiny_bert_dir):
    enc = get_encoder("hf-text", path=str(tiny_bert_dir), max_length=8, device="cpu")
    text = "the state of the union is strong and we must trade this year ."
    windows = enc.prepare(text)
    assert len(windows) >= 2 and all(len(w) <= 8 for w in windows)
    whole = enc.encode_prepared([windows])[0]
    parts = [enc.encode_prepared([[w]])[0] for w in windows]
    weights = np.array([len(w) for w in windows], np.float64)
    np.testing.assert_allclose(whole, (np.stack(parts) * weights[:, None]).sum(0) / weights.sum(),
                               atol=1e-5)


def test_hf_text_t5_encoder_and_options(tiny_t5_dir):
    enc = get_encoder("hf-text", path=str(tiny_t5_dir), normalize=True, device="cpu")
    out = enc.encode(["the army", "the navy grew"])
    assert out.shape == (2, 16) and np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert type(enc._model).__name__ == "T5EncoderModel"
    cls = get_encoder("hf-text", path=str(tiny_t5_dir), pooling="cls")
    assert cls.fingerprint() != enc.fingerprint()
    with pytest.raises(ValueError, match="pooling"):
        get_encoder("hf-text", path=str(tiny_t5_dir), pooling="max")
