"""Content-addressed, crash-safe on-disk cache of encoder outputs.

Layout under ``cache_dir``::

    file_hashes.json                   memo: absolute path -> [size, mtime_ns, sha256 of bytes]
    <encoder name>-<fingerprint[:16]>/ one namespace per encoder + output-relevant options + version
        encoder.json                   what the namespace holds (human readable)
        chunk-<hash>.npz               keys (S64), vectors (n, dim) float32, missing keys + reasons
        index.npz                      key -> (chunk, row) for every chunk, rewritten at the end

``cache_dir`` is a local folder or any fsspec URL (``s3://bucket/cache``, ``gs://...``,
``file:///...``), so that Dask workers on several machines can share one cache. Every chunk is
written atomically right after its batch is computed (locally: a temporary file renamed into
place; on an object store: one PUT, itself atomic), so a crash loses at most the batch in flight. ``index.npz`` only speeds up opening: chunks it does not
list (written by a run that crashed before rewriting it) are scanned on open, entries of chunks
that were deleted are dropped. A key is a sha256 over the encoder fingerprint and the segment's
content (see ``text_key`` / ``audio_key``), so an unchanged segment is never recomputed and a
changed one never reuses a stale vector.

Audio identity — why the sha256 of the file's bytes: keying on (path, size, mtime) alone costs
nothing but recomputes everything after a copy, a checkout or a ``touch``, and can miss an
in-place edit that keeps size and mtime. Hashing the decoded span would be the most precise but
needs decoding every segment on every run, which is what the cache is meant to avoid. The file's
bytes are hashed once and memoised by (path, size, mtime_ns) in ``file_hashes.json``, so a warm
run stats files but reads none, and identical files at different paths share cache entries.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hilbert_pipeline.encoders.base import file_digest
from hilbert_pipeline.utils import atomic_path, json_text


class Store:
    """A folder on the local disk or behind an fsspec URL: whole-file reads and atomic writes."""

    def __init__(self, root: str | os.PathLike) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.fs, base = fsspec.core.url_to_fs(str(root))
        self.local = isinstance(self.fs, LocalFileSystem)
        # a remote root keeps its protocol, so that a path handed on (the file-hash memo's)
        # still names this store and not a local folder of the same name
        self.root = (str(Path(base).resolve()) if self.local
                     else self.fs.unstrip_protocol(base.rstrip("/")))

    def path(self, *parts: str) -> str:
        """The path (a URL for a remote store) of ``parts`` under the root."""
        return "/".join([self.root, *parts])

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def names(self, folder: str, pattern: str) -> set[str]:
        return {p.rsplit("/", 1)[-1] for p in self.fs.glob(f"{folder}/{pattern}")}

    def read(self, path: str) -> bytes:
        if self.local:
            return Path(path).read_bytes()
        with self.fs.open(path, "rb") as fh:
            return fh.read()

    def write(self, path: str, data: bytes) -> None:
        """All of ``data`` or nothing: a reader never sees a half-written file."""
        if self.local:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        else:
            self.fs.pipe_file(path, data)

    def write_json(self, path: str, obj: Any) -> None:
        self.write(path, json_text(obj).encode())

    def load_npz(self, path: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.read(path)), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def text_key(fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{fingerprint}\0text\0{text}".encode()).hexdigest()


def audio_key(fingerprint: str, file_sha: str, start: float, end: float) -> str:
    """Key of the span ``[start, end)`` seconds of the file whose bytes hash to ``file_sha``."""
    return hashlib.sha256(f"{fingerprint}\0audio\0{file_sha}\0{start:.6f}\0{end:.6f}".encode()
                          ).hexdigest()


class FileHasher:
    """sha256 of audio files, memoised on disk by (absolute path, size, mtime_ns)."""

    def __init__(self, memo_path: str | os.PathLike | None) -> None:
        """``memo_path``: a file path or fsspec URL (None: no memo)."""
        self._store = None
        self.memo_path = None
        if memo_path is not None:
            folder, _, name = str(memo_path).replace(os.sep, "/").rpartition("/")
            self._store = Store(folder or ".")
            self.memo_path = self._store.path(name)
        self._memo: dict[str, list] = {}
        self._dirty = False
        self.files_hashed = 0
        if self.memo_path is not None and self._store.exists(self.memo_path):
            try:
                self._memo = json.loads(self._store.read(self.memo_path))
            except (OSError, ValueError):
                self._memo = {}  # a corrupt memo only costs re-hashing

    def digest(self, path: str | os.PathLike) -> str:
        p = Path(path).resolve()
        st = p.stat()
        ident = [st.st_size, st.st_mtime_ns]
        hit = self._memo.get(str(p))
        if hit is not None and hit[:2] == ident:
            return hit[2]
        sha = file_digest(p)
        self.files_hashed += 1
        self._memo[str(p)] = [*ident, sha]
        self._dirty = True
        return sha

    def save(self) -> None:
        if self._dirty and self.memo_path is not None:
            self._store.write_json(self.memo_path, self._memo)
            self._dirty = False


class FeatureCache:
    """Vectors (and "missing" verdicts) of one encoder namespace, keyed by content hashes."""

    def __init__(self, root: str | os.PathLike, namespace: str, dim: int,
                 info: dict[str, Any] | None = None) -> None:
        self.store = Store(root)
        self.dir = self.store.path(namespace)
        self.dim = int(dim)
        self.store.makedirs(self.dir)
        if info is not None and not self.store.exists(f"{self.dir}/encoder.json"):
            self.store.write_json(f"{self.dir}/encoder.json", info)
        self._where: dict[str, tuple[str, int]] = {}
        self._missing: dict[str, str] = {}
        self._chunks_indexed: set[str] = set()
        self._index_dirty = False
        self._open()

    # ---- opening -----------------------------------------------------------------------------
    def _open(self) -> None:
        present = self.store.names(self.dir, "chunk-*.npz")
        idx = f"{self.dir}/index.npz"
        if self.store.exists(idx):
            try:
                z = self.store.load_npz(idx)
                chunks = [str(c) for c in z["chunks"]]
                ok = np.array([c in present for c in chunks], dtype=bool)
                for k, c, r in zip(z["keys"], z["chunk"], z["row"], strict=True):
                    if ok[c]:
                        self._where[k.decode()] = (chunks[c], int(r))
                for k, reason in zip(z["missing_keys"], z["missing_reasons"], strict=True):
                    self._missing[k.decode()] = str(reason)
                self._chunks_indexed = {c for c, good in zip(chunks, ok, strict=True) if good}
                if not ok.all():
                    self._index_dirty = True
            except (OSError, ValueError, KeyError):
                self._where, self._missing, self._chunks_indexed = {}, {}, set()
        for name in sorted(present - self._chunks_indexed):
            self._scan_chunk(name)

    def _scan_chunk(self, name: str) -> None:
        try:
            z = self.store.load_npz(f"{self.dir}/{name}")
            for r, k in enumerate(z["keys"]):
                self._where[k.decode()] = (name, r)
            for k, reason in zip(z["missing_keys"], z["missing_reasons"], strict=True):
                self._missing[k.decode()] = str(reason)
        except (OSError, ValueError, KeyError):
            return  # unreadable chunk (e.g. disk error): its entries are simply recomputed
        self._chunks_indexed.add(name)
        self._index_dirty = True

    # ---- queries -----------------------------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return key in self._where or key in self._missing

    def __len__(self) -> int:
        return len(self._where) + len(self._missing)

    def missing_reason(self, key: str) -> str | None:
        return self._missing.get(key)

    def get_many(self, keys: Sequence[str]) -> np.ndarray:
        """Vectors of ``keys`` (all must be cached as vectors), reading each chunk once."""
        out = np.zeros((len(keys), self.dim), np.float32)
        by_chunk: dict[str, list[tuple[int, int]]] = {}
        for i, k in enumerate(keys):
            name, row = self._where[k]
            by_chunk.setdefault(name, []).append((i, row))
        for name, pairs in by_chunk.items():
            vecs = self.store.load_npz(f"{self.dir}/{name}")["vectors"]
            dst, src = zip(*pairs, strict=True)
            out[list(dst)] = vecs[list(src)]
        return out

    # ---- writes ------------------------------------------------------------------------------
    def put(self, keys: Sequence[str], vectors: np.ndarray,
            missing: Iterable[tuple[str, str]] = ()) -> None:
        """Store one batch as a chunk file, atomically."""
        missing = list(missing)
        if not len(keys) and not missing:
            return
        vectors = np.asarray(vectors, np.float32).reshape(len(keys), self.dim)
        h = hashlib.sha256("".join(keys).encode() + b"|" + "".join(k for k, _ in missing).encode())
        name = f"chunk-{h.hexdigest()[:20]}.npz"
        self.store.write(f"{self.dir}/{name}", _npz_bytes(
            keys=np.array(list(keys), dtype="S64"), vectors=vectors,
            missing_keys=np.array([k for k, _ in missing], dtype="S64"),
            missing_reasons=np.array([r for _, r in missing], dtype=str)))
        for r, k in enumerate(keys):
            self._where[k] = (name, r)
        for k, reason in missing:
            self._missing[k] = reason
        self._chunks_indexed.add(name)
        self._index_dirty = True

    def flush_index(self) -> None:
        """Rewrite ``index.npz`` so the next open needs to read a single file."""
        if not self._index_dirty:
            return
        chunks = sorted(self._chunks_indexed)
        pos = {c: i for i, c in enumerate(chunks)}
        keys = list(self._where)
        self.store.write(f"{self.dir}/index.npz", _npz_bytes(
            chunks=np.array(chunks, dtype=str),
            keys=np.array(keys, dtype="S64"),
            chunk=np.array([pos[self._where[k][0]] for k in keys], dtype=np.int32),
            row=np.array([self._where[k][1] for k in keys], dtype=np.int32),
            missing_keys=np.array(list(self._missing), dtype="S64"),
            missing_reasons=np.array(list(self._missing.values()), dtype=str)))
        self._index_dirty = False
