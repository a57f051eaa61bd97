"""Audio encoders on real espeak-ng speech; HF speech encoders from tiny random checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hilbert_pipeline.encoders import EncoderError, get_encoder

SAME_TEXT = "The state of the union is strong and our people are working hard every day."
OTHER_TEXT = "We shall defend the constitution and pay down the national debt this year."


@pytest.fixture(scope="module")
def resemblyzer():
    return get_encoder("resemblyzer", device="cpu", batch_size=8)


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_resemblyzer_captures_voice_not_words(resemblyzer, speech):
    m_same = speech(SAME_TEXT, "en-us+m3")
    m_other = speech(OTHER_TEXT, "en-us+m3")
    f_same = speech(SAME_TEXT, "en-us+f3")
    v = resemblyzer.encode([m_same, m_other, f_same])
    assert v.shape == (3, 256) and v.dtype == np.float32
    # same voice, different words  vs  same words, different voice
    assert _cos(v[0], v[1]) > _cos(v[0], v[2]) + 0.05


def test_resemblyzer_batched_matches_embed_utterance(resemblyzer, speech):
    from resemblyzer import VoiceEncoder, preprocess_wav

    wavs = [speech(SAME_TEXT, "en-us"), speech(OTHER_TEXT, "en-us+f3"),
            speech("Thank you.", "en-us")]
    ours = resemblyzer.encode(wavs)
    ref_model = VoiceEncoder("cpu", verbose=False)
    ref = np.stack([ref_model.embed_utterance(preprocess_wav(w)) for w in wavs])
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_resemblyzer_short_or_silent_audio_is_unusable(resemblyzer):
    assert "too short" in resemblyzer.usable(np.ones(1000, np.float32) * 0.1)
    assert "silent" in resemblyzer.usable(np.zeros(16000, np.float32))
    assert resemblyzer.usable(np.random.default_rng(0).normal(0, .1, 16000)) is None


def test_egemaps_88_finite_functionals(speech):
    enc = get_encoder("egemaps")
    v = enc.encode([speech(SAME_TEXT), speech(OTHER_TEXT, "en-us+f3")])
    assert v.shape == (2, 88) and np.isfinite(v).all()
    assert not np.allclose(v[0], v[1])
    assert "too short" in enc.usable(np.zeros(100, np.float32))


def test_hf_speech_wav2vec2_pooling_layers_and_batching(tiny_wav2vec2_dir, speech):
    enc = get_encoder("hf-speech", path=str(tiny_wav2vec2_dir), device="cpu", batch_size=4)
    assert enc.dim == 16 and enc.sample_rate == 16000 and not enc.loaded
    wavs = [speech(SAME_TEXT), speech("Thank you.")]
    together = enc.encode(wavs)
    alone = np.stack([enc.encode([w])[0] for w in wavs])
    # the attention mask + frame-length pooling make padding invisible
    np.testing.assert_allclose(together, alone, atol=1e-4)
    first = get_encoder("hf-speech", path=str(tiny_wav2vec2_dir), layer=0).encode(wavs[:1])
    assert not np.allclose(first, together[:1])
    with pytest.raises(EncoderError, match="layer 7 out of range"):
        get_encoder("hf-speech", path=str(tiny_wav2vec2_dir), layer=7)


def test_hf_speech_group_norm_hubert_is_batch_independent(tiny_hubert_dir, speech):
    enc = get_encoder("hf-speech", path=str(tiny_hubert_dir), layer=1, device="cpu")
    assert not enc.batchable  # group norm over time would see the padding
    wavs = [speech(SAME_TEXT), speech("Thank you.")]
    v = enc.encode(wavs)
    assert v.shape == (2, 16) and np.isfinite(v).all()
    assert type(enc._model).__name__ == "HubertModel"
    np.testing.assert_allclose(v, np.stack([enc.encode([w])[0] for w in wavs]), atol=1e-5)


def test_hf_speech_whisper_pools_only_real_frames(tiny_whisper_dir, speech):
    from transformers import WhisperFeatureExtractor, WhisperModel

    enc = get_encoder("hf-speech", path=str(tiny_whisper_dir), device="cpu")
    wav = speech(SAME_TEXT)
    v = enc.encode([wav])[0]
    fe = WhisperFeatureExtractor.from_pretrained(tiny_whisper_dir)
    model = WhisperModel.from_pretrained(tiny_whisper_dir).encoder.eval()
    feats = torch.from_numpy(fe(wav, sampling_rate=16000, return_tensors="np")["input_features"])
    with torch.no_grad():
        h = model(feats).last_hidden_state[0]
    n = math.ceil(math.ceil(len(wav) / 160) / 2)
    np.testing.assert_allclose(v, h[:n].mean(0).numpy(), atol=1e-5)
    assert not np.allclose(v, h.mean(0).numpy(), atol=1e-3)  # padding is not averaged in


def test_hf_speech_whisper_longer_than_30s_uses_all_audio(tiny_whisper_dir, speech):
    enc = get_encoder("hf-speech", path=str(tiny_whisper_dir), device="cpu")
    wav = speech(SAME_TEXT)
    long = np.concatenate([wav] * int(np.ceil(31 * 16000 / len(wav))))[: 33 * 16000]
    windows = enc.prepare(long)
    assert len(windows) == 2 and windows[1][1] == math.ceil(3 * 16000 / 160 / 2)
    first_30 = enc.encode([long[: 30 * 16000]])[0]
    tail = enc.encode([long[30 * 16000:]])[0]
    full = enc.encode([long])[0]
    w0, w1 = windows[0][1], windows[1][1]
    np.testing.assert_allclose(full, (first_30 * w0 + tail * w1) / (w0 + w1), atol=1e-5)


# --- whisper: the shipped tiny.en (CTranslate2), real weights -----------------------------------

@pytest.fixture(scope="module")
def whisper():
    return get_encoder("whisper", device="cpu")


def test_whisper_width_and_different_speech_gives_different_vectors(whisper, speech):
    a, b = speech(SAME_TEXT, "en-us"), speech(OTHER_TEXT, "en-us")
    v = whisper.encode([a, b, a])
    assert whisper.dim == 384 and v.shape == (3, 384) and np.isfinite(v).all()
    assert np.abs(v[0] - v[2]).max() == 0.0  # one segment's vector never depends on the batch
    assert _cos(v[0], v[1]) < 0.999 and np.abs(v[0] - v[1]).max() > 1e-2
    desc = whisper.describe()
    assert desc["name"] == "whisper" and desc["version"].startswith("ct2:")


def test_whisper_long_segments_use_all_audio(whisper, speech):
    a, b = speech(SAME_TEXT, "en-us"), speech(OTHER_TEXT, "en-us+f3")
    long = np.concatenate([a] * 5 + [b] * 5)  # longer than Whisper's 30 s window
    assert len(long) > 30 * 16000
    v = whisper.encode([long, np.concatenate([a] * 5)])
    assert np.abs(v[0] - v[1]).max() > 1e-2  # the second half (other voice, other words) counts


def test_whisper_refuses_a_folder_that_is_not_a_whisper_model(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match="not a CTranslate2 Whisper folder"):
        get_encoder("whisper", path=str(tmp_path))
    with pytest.raises(EncoderError, match="not found|does not exist"):
        get_encoder("whisper", path=str(tmp_path / "missing"))
