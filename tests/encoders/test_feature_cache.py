"""Content-addressed feature cache: chunks, index, crash recovery, file-hash memo."""

from __future__ import annotations

import os

import numpy as np

from hilbert_pipeline.encoders import FeatureCache, FileHasher, audio_key, text_key


def _keys(n, tag="t"):
    return [text_key("fp", f"{tag}{i}") for i in range(n)]


def test_put_get_and_reopen_through_the_index(tmp_path):
    c = FeatureCache(tmp_path, "enc-1", dim=3, info={"name": "enc"})
    k = _keys(5)
    v = np.arange(15, dtype=np.float32).reshape(5, 3)
    c.put(k[:2], v[:2])
    c.put(k[2:], v[2:], missing=[(text_key("fp", "short"), "too short (0.1 s < 0.3 s)")])
    c.flush_index()
    assert (tmp_path / "enc-1" / "encoder.json").is_file()
    assert len(list((tmp_path / "enc-1").glob("chunk-*.npz"))) == 2
    again = FeatureCache(tmp_path, "enc-1", dim=3)
    np.testing.assert_array_equal(again.get_many(k[::-1]), v[::-1])
    assert again.missing_reason(text_key("fp", "short")).startswith("too short")
    assert text_key("fp", "other") not in again


def test_chunks_written_after_the_last_index_are_recovered(tmp_path):
    c = FeatureCache(tmp_path, "enc", dim=2)
    c.put(_keys(2, "a"), np.ones((2, 2), np.float32))
    c.flush_index()
    # a later run crashes after writing a chunk but before rewriting the index
    c.put(_keys(2, "b"), np.full((2, 2), 2, np.float32))
    reopened = FeatureCache(tmp_path, "enc", dim=2)
    np.testing.assert_array_equal(reopened.get_many(_keys(2, "b")), np.full((2, 2), 2))
    # a deleted chunk drops its entries instead of failing later
    for p in (tmp_path / "enc").glob("chunk-*.npz"):
        with np.load(p) as z:
            if z["keys"][0].decode() == _keys(2, "a")[0]:
                p.unlink()
    final = FeatureCache(tmp_path, "enc", dim=2)
    assert _keys(2, "a")[0] not in final and _keys(2, "b")[0] in final
    assert not list((tmp_path / "enc").glob(".*.tmp"))  # no half-written files left


def test_file_hasher_memoises_and_sees_edits(tmp_path):
    f = tmp_path / "x.wav"
    f.write_bytes(b"abc")
    h = FileHasher(tmp_path / "memo.json")
    d1 = h.digest(f)
    h.save()
    h2 = FileHasher(tmp_path / "memo.json")
    assert h2.digest(f) == d1 and h2.files_hashed == 0
    f.write_bytes(b"abd")
    os.utime(f, ns=(1, 1))
    assert h2.digest(f) != d1 and h2.files_hashed == 1
    assert audio_key("fp", d1, 0.0, 1.0) != audio_key("fp", d1, 0.0, 1.5)


def test_the_cache_lives_behind_any_fsspec_url(tmp_path):
    """``memory://`` is a real non-local fsspec filesystem (the code path of s3://, gs://);
    ``file://`` URLs and plain paths name the same local folder."""
    import fsspec

    mem = fsspec.filesystem("memory")
    url = f"memory://hilbert-test-{os.getpid()}/cache"
    try:
        c = FeatureCache(url, "enc", dim=2, info={"name": "enc"})
        c.put(_keys(3, "m"), np.arange(6, dtype=np.float32).reshape(3, 2),
              missing=[(text_key("fp", "gone"), "empty text")])
        c.flush_index()
        assert mem.exists(f"/hilbert-test-{os.getpid()}/cache/enc/encoder.json")
        again = FeatureCache(url, "enc", dim=2)
        np.testing.assert_array_equal(again.get_many(_keys(3, "m")),
                                      np.arange(6).reshape(3, 2))
        assert again.missing_reason(text_key("fp", "gone")) == "empty text"
        memo = FileHasher(f"{url}/file_hashes.json")
        audio = tmp_path / "a.bin"
        audio.write_bytes(b"abc")
        sha = memo.digest(audio)
        memo.save()
        assert FileHasher(f"{url}/file_hashes.json").digest(audio) == sha
    finally:
        mem.rm(f"/hilbert-test-{os.getpid()}", recursive=True)

    local = FeatureCache(f"file://{tmp_path}/c", "enc", dim=2)
    local.put(_keys(1, "f"), np.ones((1, 2), np.float32))
    assert _keys(1, "f")[0] in FeatureCache(tmp_path / "c", "enc", dim=2)
