"""Fixtures for encoder tests: real espeak-ng speech and tiny randomly initialised HF models."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from hilbert_pipeline.audio import load_audio

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def speech(espeak: str, tmp_path_factory: pytest.TempPathFactory):
    """``speech(text, voice)`` -> 16 kHz float32 waveform synthesised by espeak-ng."""
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[tuple[str, str], np.ndarray] = {}

    def make(text: str, voice: str = "en-us", rate: int = 16000) -> np.ndarray:
        if (text, voice) not in cache:
            out = folder / f"s{len(cache)}.wav"
            subprocess.run([espeak, "-v", voice, "-s", "175", "-w", str(out), text], check=True)
            cache[(text, voice)] = out
        return load_audio(cache[(text, voice)], rate)[0]

    return make


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "state", "of", "union",
              "is", "strong", "budget", "army", "navy", "trade", "grew", "we", "must", "poison",
              "and", "year", "this", "."]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (hidden 16) with a real BertTokenizer, saved with save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    tok = BertTokenizer(vocab=str(vocab))  # transformers 5: `vocab` takes the vocab.txt path
    assert tok("the union")["input_ids"] == [2, 5, 9, 3]  # real word pieces, not [UNK]
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """A tiny random T5 encoder (d_model 16); tokenizer files reused from the tiny BERT."""
    import shutil

    from transformers import T5Config, T5EncoderModel

    folder = tmp_path_factory.mktemp("tiny_t5")
    for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json",
                 "special_tokens_map.json"):
        if (tiny_bert_dir / name).is_file():
            shutil.copy2(tiny_bert_dir / name, folder / name)
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(TINY_VOCAB), d_model=16, d_kv=8, d_ff=32, num_layers=2,
                      num_heads=2, pad_token_id=0, decoder_start_token_id=0)
    T5EncoderModel(config).eval().save_pretrained(folder)
    return folder


def _tiny_w2v_kwargs(**extra) -> dict:
    return dict(**extra, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="session")
def tiny_wav2vec2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny_wav2vec2")
    torch.manual_seed(0)
    # layer-norm conv feature encoder (like wav2vec2-large-lv60): trained with attention masks
    config = Wav2Vec2Config(**_tiny_w2v_kwargs(feat_extract_norm="layer",
                                               do_stable_layer_norm=True))
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    folder = tmp_path_factory.mktemp("tiny_hubert")
    torch.manual_seed(0)
    # group-norm conv feature encoder (like hubert-base): no attention mask
    HubertModel(HubertConfig(**_tiny_w2v_kwargs())).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    folder = tmp_path_factory.mktemp("tiny_whisper")
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                           max_source_positions=1500, max_target_positions=16, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    WhisperModel(config).eval().save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder
