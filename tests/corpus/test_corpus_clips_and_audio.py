"""Clip folders (natural order) and audio decoding: resampling and channel mixing."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from hilbert_pipeline.audio import audio_info, load_audio
from hilbert_pipeline.corpus import SegmentationConfig, natural_key, segment_corpus, validate_corpus
from hilbert_pipeline.demo import synthesize_sentence


def test_natural_key_orders_numbers_as_numbers():
    names = ["x_1_10.mp3", "x_1_2.mp3", "x_2_1.mp3", "x_1_1.mp3", "X_1_3.wav"]
    assert sorted(names, key=natural_key) == [
        "x_1_1.mp3", "x_1_2.mp3", "X_1_3.wav", "x_1_10.mp3", "x_2_1.mp3"]


def test_clip_folder_is_matched_in_natural_order(tmp_path, espeak):
    """Clips x_1_2 and x_1_10 of *different* lengths: each line must get its own clip."""
    words = {"x_1_1": "one", "x_1_2": "two two two two two two", "x_1_10": "ten"}
    clips = tmp_path / "clips"
    clips.mkdir()
    lengths = {}
    for name, text in words.items():
        x, sr = synthesize_sentence(text)
        sf.write(str(clips / f"{name}.wav"), x, sr)
        lengths[name] = len(x) / sr
    (clips / ".DS_Store").write_bytes(b"junk")  # hidden files are ignored
    # lines in natural order of the clip names: x_1_1, x_1_2, x_1_10 (lexicographic: 1, 10, 2)
    (tmp_path / "t.txt").write_text("one\ntwo two two two two two\nten\n")
    (tmp_path / "manifest.csv").write_text("doc_id,label,audio,transcript\nd,a,clips,t.txt\n")
    res = validate_corpus(tmp_path, min_docs_per_label=1, require_labels=False)
    assert res.ok, res.report["problems"]
    never_merged = SegmentationConfig(min_duration=100.0, max_duration=None, max_segments=None)
    never_split = SegmentationConfig(min_duration=None, max_duration=0.1, max_segments=None)
    segs, docs, _ = segment_corpus(res.documents, never_merged)
    assert segs.equals(segment_corpus(res.documents, never_split)[0])
    assert list(segs["text"]) == ["one", "two two two two two two", "ten"]
    assert [p.rsplit("/", 1)[-1] for p in segs["audio_path"]] == [
        "x_1_1.wav", "x_1_2.wav", "x_1_10.wav"]
    expected = [lengths["x_1_1"], lengths["x_1_2"], lengths["x_1_10"]]
    assert np.allclose(segs["audio_end"], expected) and (segs["audio_start"] == 0).all()
    assert np.allclose(segs["start"], np.concatenate([[0], np.cumsum(expected)[:-1]]))
    assert np.allclose(segs["end"], np.cumsum(expected))
    assert docs["duration"].iloc[0] == sum(expected)
    # one line too many: a count mismatch, reported with both numbers
    (tmp_path / "t.txt").write_text("one\ntwo\nten\neleven\n")
    rep = validate_corpus(tmp_path, min_docs_per_label=1, require_labels=False).report
    [p] = rep["problems"]
    assert p["kind"] == "clip_count_mismatch" and "3 clips" in p["message"] \
        and "4 lines" in p["message"] and p["row"] == 2
    # a stray non-audio file inside the clip folder is reported, not skipped
    (tmp_path / "t.txt").write_text("one\ntwo\nten\n")
    (clips / "notes.md").write_text("x")
    rep = validate_corpus(tmp_path, min_docs_per_label=1, require_labels=False).report
    assert [p["kind"] for p in rep["problems"]] == ["clip_foreign_file"]
    assert "notes.md" in rep["problems"][0]["message"]


def test_stereo_44k1_is_mixed_and_resampled(tmp_path, espeak):
    """A 44.1 kHz stereo file with speech on the left and its inverse on the right plus a tone."""
    x, sr = synthesize_sentence("Resampling keeps the content of speech.")
    from hilbert_pipeline.audio import resample

    left = resample(x, sr, 44100)
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(left.size) / 44100).astype(np.float32)
    stereo = np.stack([left + tone, tone - left], axis=1)  # mono mix = the tone alone
    path = tmp_path / "s.wav"
    sf.write(str(path), stereo, 44100, subtype="FLOAT")
    dur, rate, ch = audio_info(path)
    assert (rate, ch) == (44100, 2) and abs(dur - left.size / 44100) < 1e-9
    y, out_sr = load_audio(path, 16000)
    assert out_sr == 16000 and y.ndim == 1
    assert abs(y.size - round(left.size * 16000 / 44100)) <= 1
    ref = 0.2 * np.sin(2 * np.pi * 440 * np.arange(y.size) / 16000)
    inner = slice(200, -200)  # away from the resampler's edge effects
    assert np.abs(y[inner] - ref[inner]).max() < 0.01
    # a span read: [1.0, 1.5) s -> 8000 samples at 16 kHz, identical to slicing the whole file
    part, _ = load_audio(path, 16000, 1.0, 1.5)
    assert part.size == 8000
    assert np.abs(part[100:-100] - y[16000 + 100: 24000 - 100]).max() < 0.01
    # speech content survives resampling: the left channel alone, 44.1k -> 16k vs espeak's rate
    sf.write(str(tmp_path / "l.flac"), left, 44100)
    z, _ = load_audio(tmp_path / "l.flac", sr)
    n = min(z.size, x.size)
    assert np.corrcoef(z[:n], x[:n])[0, 1] > 0.99


def test_mp3_ogg_flac_read_through_soundfile(tmp_path, espeak):
    x, sr = synthesize_sentence("Every format decodes.")
    for ext, kw in [(".flac", {}), (".ogg", {"format": "OGG", "subtype": "VORBIS"}),
                    (".mp3", {"format": "MP3"})]:
        p = tmp_path / f"a{ext}"
        try:
            sf.write(str(p), x, sr, **kw)
        except (sf.LibsndfileError, ValueError, TypeError):
            assert ext == ".mp3", f"soundfile cannot write {ext}"
            continue  # libsndfile < 1.1 has no MP3; decoding is then not available either
        dur, _, _ = audio_info(p)
        assert abs(dur - x.size / sr) < 0.1
        y, _ = load_audio(p, 16000)
        assert y.size > 0.9 * x.size * 16000 / sr


def test_damaged_float_samples_and_empty_files_are_named_with_what_to_do(tmp_path):
    import pytest

    from hilbert_pipeline.audio import AudioError

    y = np.zeros(16000, dtype=np.float32)
    y[100:200] = np.nan
    sf.write(str(tmp_path / "nan.wav"), y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: decoded samples contain NaN .* re-export"):
        load_audio(tmp_path / "nan.wav", 16000)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav: the file is empty \(0 bytes"):
        audio_info(tmp_path / "zero.wav")
    # neither decoder reads it: both reasons, FFmpeg's without its errno
    (tmp_path / "junk.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 100)
    with pytest.raises(AudioError, match=r"junk\.m4a: unreadable audio \(.+; FFmpeg: [^\[]+\)$"):
        audio_info(tmp_path / "junk.m4a")


def _encode(path, x: np.ndarray, sr: int, codec: str) -> None:
    """Write ``x`` ((samples,) or (samples, channels)) with PyAV's FFmpeg encoder ``codec``."""
    import av

    x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, np.float32).T))  # (channels, samples)
    layout = "mono" if x.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=sr, layout=layout)
        fmt = st.codec_context.codec.audio_formats[0].name  # the encoder's own sample format
        frame = av.AudioFrame.from_ndarray(x, format="fltp", layout=layout)
        frame.sample_rate = sr
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=sr)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for p in st.encode(f):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)


def _lagged_corr(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """The best correlation of ``b`` against ``a`` delayed by 0..max_lag samples (an encoder's
    priming delay)."""
    n = min(a.size, b.size) - max_lag
    return max(np.corrcoef(a[:n], b[lag:lag + n])[0, 1] for lag in range(0, max_lag + 1, 8))


def test_m4a_and_opus_recordings_decode_through_ffmpeg(tmp_path, espeak):
    """What libsndfile cannot read (AAC in .m4a, Opus in .webm: podcasts, video calls) is
    decoded with PyAV, spans included; a stereo file is mixed to mono like any other."""
    x, sr = synthesize_sentence("Podcasts arrive as compressed audio files.")
    from hilbert_pipeline.audio import resample

    ref = resample(x / np.abs(x).max() * 0.5, sr, 48000)
    for name, codec, data, channels in [("a.m4a", "aac", ref, 1),
                                        ("b.webm", "libopus", np.stack([ref, ref], 1), 2),
                                        ("c.mkv", "pcm_s16le", np.stack([ref, 0.5 * ref], 1), 2)]:
        p = tmp_path / name
        _encode(p, data, 48000, codec)
        dur, rate, ch = audio_info(p)
        assert (rate, ch) == (48000, channels), name
        assert abs(dur - ref.size / 48000) < 0.1, (name, dur)
        y, out_sr = load_audio(p, 48000)
        assert out_sr == 48000 and y.ndim == 1 and abs(y.size - ref.size) < 0.1 * 48000
        if codec == "pcm_s16le":  # lossless, packed (interleaved) 16-bit: exact up to rounding
            assert y.size == ref.size and np.abs(y - 0.75 * ref).max() < 2 / 32768, name
            continue
        assert _lagged_corr(ref, y, 2048) > 0.95, name
        # a span is exactly the whole file's slice (AAC decodes a sample differently when the
        # decoder starts elsewhere, so reads decode from the start)
        part, _ = load_audio(p, 48000, 1.0, 1.5)
        assert np.array_equal(part, y[48000:72000]), name
    # a corpus with such a recording validates and segments like a wav
    corpus = tmp_path / "c"
    (corpus / "audio").mkdir(parents=True)
    (tmp_path / "a.m4a").rename(corpus / "audio" / "d0.m4a")
    end = ref.size / 48000 - 0.2
    (corpus / "d0.vtt").write_text(f"WEBVTT\n\n00:00:00.000 --> 00:00:0{end:.3f}\nPodcasts.\n")
    (corpus / "manifest.csv").write_text("doc_id,label,audio,transcript\n"
                                         "d0,a,audio/d0.m4a,d0.vtt\n")
    res = validate_corpus(corpus, min_docs_per_label=1, require_labels=False)
    assert res.ok, res.report["problems"]
