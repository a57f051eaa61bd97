"""embed_segments: output contract, cache behaviour, missing modalities, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hilbert_pipeline.audio import AudioError, load_audio
from hilbert_pipeline.encoders import EncoderError, SegmentsError, embed_segments, get_encoder
from hilbert_pipeline.encoders.audio import ResemblyzerEncoder
from hilbert_pipeline.encoders.text import HFTextEncoder, MiniLMEncoder


class CountEncoded:
    """Mixin for a real encoder: counts how many prepared items reach its forward pass."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.encoded = 0

    def encode_prepared(self, prepared):
        self.encoded += len(prepared)
        return super().encode_prepared(prepared)


class CountingResemblyzer(CountEncoded, ResemblyzerEncoder):
    """The real resemblyzer encoder, also counting how many items it prepares (decodes)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.prepared = 0

    def prepare(self, wav):
        self.prepared += 1
        return super().prepare(wav)


class CountingMiniLM(CountEncoded, MiniLMEncoder):
    pass


class CountingHFText(CountEncoded, HFTextEncoder):
    pass


def encoders(batch_size=4):
    return (CountingResemblyzer(device="cpu", batch_size=batch_size),
            CountingMiniLM(device="cpu", batch_size=batch_size))


def test_output_contract_and_warm_rerun_computes_nothing(make_segments, tmp_path):
    seg = make_segments()
    audio, text = encoders()
    feats, summary = embed_segments(seg, audio, text, tmp_path / "cache", progress=False)
    n = len(seg)
    assert list(feats["index"].columns) == ["doc_id", "seg_idx"]
    pd.testing.assert_frame_equal(feats["index"], seg[["doc_id", "seg_idx"]])
    assert feats["audio"].shape == (n, 256) and feats["audio"].dtype == np.float32
    assert feats["text"].shape == (n, 384) and feats["text"].dtype == np.float32
    assert feats["audio_mask"].all() and feats["text_mask"].all()
    assert feats["meta"]["audio_encoder"]["name"] == "resemblyzer"
    assert feats["meta"]["text_encoder"] == {"name": "minilm", "dim": 384, "options": {},
                                             "version": text.version}
    assert audio.encoded == n and text.encoded == n
    assert summary["cache_hits"] == 0 and summary["cache_misses"] == 2 * n
    assert summary["segments"] == n and summary["documents"] == 2

    audio2, text2 = encoders()
    feats2, summary2 = embed_segments(seg, audio2, text2, tmp_path / "cache", progress=False)
    assert (audio2.prepared, audio2.encoded, text2.encoded) == (0, 0, 0)
    assert not audio2.loaded and not text2.loaded  # models never loaded when all is cached
    assert summary2["cache_hits"] == 2 * n and summary2["cache_misses"] == 0
    assert summary2["audio"]["decode_prepare_seconds"] == 0
    for k in ("audio", "text", "audio_mask", "text_mask"):
        np.testing.assert_array_equal(feats[k], feats2[k])
    # voices differ between documents: same-document audio vectors are closer
    a = feats["audio"]
    within = np.mean([a[0] @ a[1], a[3] @ a[4]])
    across = np.mean([a[0] @ a[3], a[1] @ a[4]])
    assert within > across


def test_one_edit_recomputes_exactly_what_changed(make_segments, rerecord, tmp_path):
    seg = make_segments()
    cache = tmp_path / "cache"
    first, _ = embed_segments(seg, *encoders(), cache, progress=False)
    edited = seg.copy()
    edited.loc[4, "text"] = "An entirely different sentence about railways."
    audio, text = encoders()
    feats, summary = embed_segments(edited, audio, text, cache, progress=False)
    assert (audio.encoded, text.encoded) == (0, 1)
    assert summary["text"]["computed"] == 1 and summary["text"]["cache_hits"] == len(seg) - 1
    changed = ~np.all(np.isclose(first["text"], feats["text"]), axis=1)
    assert changed.tolist() == [i == 4 for i in range(len(seg))]

    # re-synthesise document d2's recording (new voice): only its 3 segments are recomputed
    rerecord("d2", "en-us+m1")
    audio, text = encoders()
    _, summary = embed_segments(edited, audio, text, cache, progress=False)
    assert (audio.encoded, text.encoded) == (3, 0)
    assert summary["audio"]["files_hashed"] == 1  # d1's file identity came from the memo


def test_decoding_once_per_document_matches_load_audio_per_segment(make_segments, tmp_path):
    seg = make_segments()
    audio = get_encoder("resemblyzer", device="cpu")
    feats, _ = embed_segments(seg, audio, None, tmp_path / "cache", progress=False)
    wavs = [load_audio(p, 16000, s, e)[0] for p, s, e in
            zip(seg["audio_path"], seg["audio_start"], seg["audio_end"], strict=True)]
    np.testing.assert_allclose(feats["audio"], audio.encode(wavs), atol=1e-6)
    assert feats["text"].shape == (len(seg), 0) and not feats["text_mask"].any()


def test_short_audio_and_empty_text_are_masked_and_counted(make_segments, tmp_path):
    seg = make_segments()
    extra = seg.iloc[[2, 5]].copy()
    extra["seg_idx"] = [3, 3]
    extra["text"] = ["", "   "]
    extra["audio_end"] = extra["audio_start"] + 0.1        # 0.1 s: too short for the encoder
    past_end = seg.iloc[[0]].copy()
    past_end["seg_idx"] = 4
    past_end["audio_start"] = past_end["audio_end"] = 1000.0
    past_end["audio_end"] = 1001.0                          # span beyond the end of the file
    seg = pd.concat([seg, extra, past_end], ignore_index=True)
    audio, text = encoders()
    feats, summary = embed_segments(seg, audio, text, tmp_path / "cache", progress=False)
    assert feats["audio_mask"].tolist() == [True] * 6 + [False] * 3
    assert feats["text_mask"].tolist() == [True] * 6 + [False, False, True]
    assert not feats["audio"][~feats["audio_mask"]].any()
    assert not feats["text"][~feats["text_mask"]].any()
    assert summary["audio"]["missing"] == 3 and summary["audio"]["missing_reasons"] == {
        "too short": 2, "outside the audio file": 1}
    assert summary["text"]["missing"] == 2 and summary["text"]["missing_reasons"] == {
        "empty text": 2}
    # the decoded-then-found-short verdict is cached too: nothing is decoded again
    audio2, text2 = encoders()
    feats2, _ = embed_segments(seg, audio2, text2, tmp_path / "cache", progress=False)
    assert audio2.prepared == 0 and feats2["audio_mask"].tolist() == feats["audio_mask"].tolist()
    # alone in its read window, the out-of-file span gets the same verdict (not a decode error)
    alone = seg.iloc[[8]].copy()
    alone["doc_id"] = "d3"
    audio3 = CountingResemblyzer(device="cpu")
    feats3, summary3 = embed_segments(alone, audio3, None, tmp_path / "cache2", progress=False)
    assert not feats3["audio_mask"].any() and audio3.prepared == 0
    assert summary3["audio"]["missing_reasons"] == {"outside the audio file": 1}


@pytest.fixture
def poisoned_bert(tmp_path):
    """A tiny BERT whose embedding of the word 'poison' is NaN: real non-finite outputs."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "poisoned_bert"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "poison", "the", "state", "union"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab=str(folder / "vocab.txt"))  # transformers 5: path via `vocab`
    assert tok("union poison")["input_ids"] == [2, 8, 5, 3]
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=16,
                                 max_position_embeddings=32)).eval()
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[5] = float("nan")
    model.save_pretrained(folder)
    return folder


def test_nan_output_names_document_and_segment_and_keeps_finished_batches(
        make_segments, poisoned_bert, tmp_path):
    seg = make_segments()
    seg["text"] = ["the state", "the union", "state union", "the", "union poison", "state"]
    cache = tmp_path / "cache"
    enc = CountingHFText(path=str(poisoned_bert), device="cpu", batch_size=2)
    with pytest.raises(EncoderError, match="document 'd2' segment 1"):
        embed_segments(seg, None, enc, cache, progress=False)
    # batches finished before the failure are on disk: after the fix only the rest is computed
    seg.loc[4, "text"] = "union"
    enc2 = CountingHFText(path=str(poisoned_bert), device="cpu", batch_size=2)
    feats, summary = embed_segments(seg, None, enc2, cache, progress=False)
    assert summary["text"]["cache_hits"] >= 2 and enc2.encoded <= len(seg) - 2
    assert np.isfinite(feats["text"]).all() and feats["text_mask"].all()


def test_bad_segments_are_reported_with_rows(make_segments, tmp_path):
    seg = make_segments()
    with pytest.raises(SegmentsError, match="missing column"):
        embed_segments(seg.drop(columns=["audio_path"]), None, None, tmp_path)
    bad = seg.copy()
    bad.loc[1, "audio_end"] = bad.loc[1, "audio_start"] - 1
    bad.loc[3, "audio_start"] = float("nan")
    with pytest.raises(SegmentsError, match=r"(?s)row 1 \(doc_id='d1', seg_idx=1\).*row 3"):
        embed_segments(bad, None, None, tmp_path)
    gone = seg.copy()
    gone.loc[2, "audio_path"] = str(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="missing.wav"):
        embed_segments(gone, get_encoder("egemaps"), None, tmp_path / "cache", progress=False)
    with pytest.raises(EncoderError, match="text encoder"):
        embed_segments(seg, get_encoder("minilm"), None, tmp_path / "cache", progress=False)


def test_node_rejects_malformed_encoder_spec_and_unknown_names(make_segments, tmp_path):
    from hilbert_pipeline.pipelines.embedding.nodes import embed_segments_node

    seg = make_segments()
    base = {"cache_dir": str(tmp_path / "cache"), "progress": False, "device": "cpu"}
    with pytest.raises(EncoderError, match="embedding.audio_encoder must be"):
        embed_segments_node(seg, {**base, "audio_encoder": "resemblyzer", "text_encoder": None})
    with pytest.raises(EncoderError, match="unknown encoder 'wav3vec'"):
        embed_segments_node(seg, {**base, "audio_encoder": {"name": "wav3vec"},
                                  "text_encoder": None})
    feats, summary = embed_segments_node(
        seg, {**base, "audio_encoder": None, "text_encoder": {"name": "minilm", "options": {}},
              "batch_size": 2, "torch_threads": 1})
    assert feats["meta"]["audio_encoder"] is None and feats["audio"].shape == (len(seg), 0)
    assert summary["audio"]["missing_reasons"] == {"disabled": len(seg)}
    assert feats["text_mask"].all() and summary["text"]["computed"] == len(seg)
