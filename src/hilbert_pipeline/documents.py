"""Per-document feature tensors built from ``segment_features`` + ``documents``.

A :class:`DocumentSet` holds, for every labelled document, its segment features of both
modalities (one ``(n_i, d)`` array per document, unpadded) and the masks; padding happens per
minibatch in :func:`collate`, so a batch is only as long as its longest document.

Label handling (:func:`build_document_set`):

* ``label_map`` renames / merges classes (``{"Whig": "other", ...}``); labels absent from the map
  are kept unchanged, so one map can serve several corpora.
* Labels are encoded with the **sorted** list of class names, so the class index of a name never
  depends on document order (stable across runs, folds and checkpoints).
* ``min_class_size`` drops classes with fewer documents; every dropped document is listed in the
  returned report (never silent).
* ``min_docs_per_class`` (set to the number of folds by the evaluation) turns a too-small class into
  a :class:`LabelError` that lists every such class: stratified k-fold cannot place such a class in
  every test fold, and dropping it behind the user's back would change the task.
* Documents without a label cannot be trained or scored; they are excluded and listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.errors import UserError


class DataError(UserError):
    """The feature bundle or the documents table does not follow the contract."""


class LabelError(UserError):
    """Labels cannot support the requested protocol (e.g. classes smaller than the fold count)."""


@dataclass
class DocumentSet:
    """Labelled documents with unpadded per-document features (row order = ``doc_ids``)."""

    doc_ids: list[str]
    labels: np.ndarray  # int64 (D,), index into label_names
    label_names: list[str]
    audio: list[np.ndarray]  # (n_i, d_a) float32 per document
    text: list[np.ndarray]  # (n_i, d_t) float32 per document
    audio_mask: list[np.ndarray]  # (n_i,) bool
    text_mask: list[np.ndarray]  # (n_i,) bool
    groups: np.ndarray | None = None  # object (D,) or None
    splits: np.ndarray | None = None  # object (D,) of "train"/"test" or None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def audio_dim(self) -> int:
        return int(self.audio[0].shape[1]) if self.audio else 0

    @property
    def text_dim(self) -> int:
        return int(self.text[0].shape[1]) if self.text else 0

    def class_counts(self) -> np.ndarray:
        """Documents per class, length ``n_classes`` (zeros for classes absent here)."""
        return np.bincount(self.labels, minlength=self.n_classes).astype(np.int64)

    def subset(self, idx: Sequence[int] | np.ndarray) -> DocumentSet:
        """The documents at positions ``idx`` (same label encoding)."""
        idx = [int(i) for i in idx]
        return DocumentSet(
            doc_ids=[self.doc_ids[i] for i in idx],
            labels=self.labels[idx].copy(),
            label_names=list(self.label_names),
            audio=[self.audio[i] for i in idx],
            text=[self.text[i] for i in idx],
            audio_mask=[self.audio_mask[i] for i in idx],
            text_mask=[self.text_mask[i] for i in idx],
            groups=None if self.groups is None else self.groups[idx].copy(),
            splits=None if self.splits is None else self.splits[idx].copy(),
            meta=dict(self.meta),
        )

    def select_ids(self, doc_ids: Sequence[str]) -> DocumentSet:
        """The documents with the given ids, in that order; unknown ids are an error."""
        pos = {d: i for i, d in enumerate(self.doc_ids)}
        missing = [d for d in doc_ids if d not in pos]
        if missing:
            raise DataError(f"unknown document ids: {missing[:20]}")
        return self.subset([pos[d] for d in doc_ids])

    def real_segments(self, modality: str) -> np.ndarray:
        """Every real segment of one modality over these documents, stacked:
        ``(n_segments, d_m)`` float64 (no rows when no document has the modality)."""
        feats, masks = ((self.audio, self.audio_mask) if modality == "audio"
                        else (self.text, self.text_mask))
        dim = self.audio_dim if modality == "audio" else self.text_dim
        rows = [f[m] for f, m in zip(feats, masks, strict=True) if m.any()]
        return np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, dim))

    def segment_stats(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-column mean and std of one modality's real segments over these documents
        (float64; zeros and ones when no document has the modality; std 1 for a column that
        does not vary, so dividing by it centres without scaling)."""
        return standardisation(self.real_segments(modality))

    def pooled_features(self, modalities: Sequence[str] = ("audio", "text")) -> np.ndarray:
        """Masked mean of each named modality's segment features, concatenated in the order
        given: ``(D, sum of widths)`` (both modalities by default: ``(D, d_a + d_t)``).

        A document with no segment of a modality gets zeros for it: a fixed value that the
        logistic-regression baseline can learn to recognise as "modality absent" (after
        standardisation it becomes ``-mean/std`` of the training documents, not an average one).
        """
        parts = {"audio": (self.audio, self.audio_mask, self.audio_dim),
                 "text": (self.text, self.text_mask, self.text_dim)}
        unknown = [m for m in modalities if m not in parts]
        if unknown or not modalities:
            raise DataError(f"modalities must be a non-empty subset of ['audio', 'text'], got "
                            f"{list(modalities)}")
        blocks = []
        for m in modalities:
            feats, masks, dim = parts[m]
            block = np.zeros((len(self), dim), dtype=np.float64)
            for i in range(len(self)):
                if masks[i].any():
                    block[i] = feats[i][masks[i]].mean(axis=0)
            blocks.append(block)
        return np.concatenate(blocks, axis=1)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of the rows of ``x``; std 1 where a column does not vary (or
    there are no rows, mean 0), so ``(x - mean) / std`` never divides by zero."""
    if len(x) == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-8, std, 1.0)


def collate(docs: DocumentSet, idx: Sequence[int],
            spans: Sequence[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Pad the documents at ``idx`` to the longest one: tensors for ``HilbertModel.forward``.

    Returns ``audio (B,N,d_a)``, ``text (B,N,d_t)``, ``audio_mask``/``text_mask (B,N)`` bool (False on
    padding) and ``labels (B,)`` int64. ``spans``: one ``(start, stop)`` per document: only its
    segments ``start:stop`` (features and masks alike; a crop), moved to the front.
    """
    import torch

    idx = [int(i) for i in idx]
    if spans is None:
        spans = [(0, docs.audio[i].shape[0]) for i in idx]
    spans = [(int(a), int(b)) for a, b in spans]
    n_max = max(b - a for a, b in spans)
    b = len(idx)
    audio = np.zeros((b, n_max, docs.audio_dim), dtype=np.float32)
    text = np.zeros((b, n_max, docs.text_dim), dtype=np.float32)
    am = np.zeros((b, n_max), dtype=bool)
    tm = np.zeros((b, n_max), dtype=bool)
    for r, (i, (lo, hi)) in enumerate(zip(idx, spans, strict=True)):
        n = hi - lo
        audio[r, :n] = docs.audio[i][lo:hi]
        text[r, :n] = docs.text[i][lo:hi]
        am[r, :n] = docs.audio_mask[i][lo:hi]
        tm[r, :n] = docs.text_mask[i][lo:hi]
    return {
        "audio": torch.from_numpy(audio),
        "text": torch.from_numpy(text),
        "audio_mask": torch.from_numpy(am),
        "text_mask": torch.from_numpy(tm),
        "labels": torch.from_numpy(docs.labels[idx].astype(np.int64)),
    }


def crop_windows(n_segments: int, length: int) -> list[tuple[int, int]]:
    """The test-time windows of a document of ``n_segments`` segments: ``length`` consecutive
    segments every ``length // 2``, the last one ending at the document's end (the whole
    document when it is not longer than ``length``)."""
    if length <= 0 or n_segments <= length:
        return [(0, n_segments)]
    step = max(1, length // 2)
    starts = list(range(0, n_segments - length + 1, step))
    if starts[-1] != n_segments - length:
        starts.append(n_segments - length)
    return [(s, s + length) for s in starts]


def clean_value(value: Any) -> str | None:
    """``None`` for null-like values (None, NaN, empty string), else the string."""
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    s = str(value)
    return s if s.strip() else None


def apply_label_map(labels: Sequence[str | None], label_map: Mapping[str, str] | None
                    ) -> list[str | None]:
    """Rename labels through ``label_map``; labels not in the map (and ``None``) are unchanged."""
    if not label_map:
        return list(labels)
    bad = {k: v for k, v in label_map.items() if clean_value(v) is None}
    if bad:
        raise LabelError(f"label_map maps to empty class names: {bad}")
    return [None if lab is None else str(label_map.get(lab, lab)) for lab in labels]


def build_document_set(
    segment_features: Mapping[str, Any],
    documents: pd.DataFrame,
    label_map: Mapping[str, str] | None = None,
    min_class_size: int = 1,
    min_docs_per_class: int | None = None,
    only_split: str | None = None,
) -> tuple[DocumentSet, dict[str, Any]]:
    """Assemble labelled documents; return ``(DocumentSet, report)``.

    ``only_split="train"`` keeps only documents whose ``split`` is ``train`` (or all when the
    corpus has no split column / no split values). The report lists the class mapping, counts and
    every excluded document with its reason.
    """
    _check_features(segment_features)
    _check_documents(documents)
    index = segment_features["index"].reset_index(drop=True)
    rows_of = rows_by_doc(index, documents)
    doc_ids = documents["doc_id"].astype(str).tolist()
    mapped = apply_label_map([clean_value(v) for v in documents["label"].tolist()], label_map)
    groups = _optional_column(documents, "group")
    splits = _splits(documents, doc_ids)
    keep, excluded = _labelled(doc_ids, mapped, splits, only_split)
    keep, small = _drop_small_classes(keep, doc_ids, mapped, min_class_size, excluded)
    counts = Counter(mapped[i] for i in keep)
    if min_docs_per_class is not None:
        too_small = {c: n for c, n in sorted(counts.items()) if n < min_docs_per_class}
        if too_small:
            raise LabelError(
                f"classes with fewer documents than the {min_docs_per_class} folds: {too_small}. "
                f"Merge them with label_map, drop them with min_class_size, or lower n_splits.")
    label_names = sorted(counts)
    if len(label_names) < 2:
        raise LabelError(f"need at least 2 classes after label_map/min_class_size, got "
                         f"{label_names} ({len(keep)} labelled documents)")
    code = {c: k for k, c in enumerate(label_names)}
    audio, text, am, tm = _gather(segment_features, index, rows_of,
                                  [doc_ids[i] for i in keep])
    has_groups = any(groups[i] is not None for i in keep)
    if has_groups and any(groups[i] is None for i in keep):
        rows = [doc_ids[i] for i in keep if groups[i] is None][:20]
        raise DataError(f"documents table: some documents have a group and others not; "
                        f"documents without group: {rows}")
    has_split = any(s is not None for s in splits)
    docs = DocumentSet(
        doc_ids=[doc_ids[i] for i in keep],
        labels=np.array([code[mapped[i]] for i in keep], dtype=np.int64),
        label_names=label_names,
        audio=audio, text=text, audio_mask=am, text_mask=tm,
        groups=np.array([groups[i] for i in keep], dtype=object) if has_groups else None,
        splits=np.array([splits[i] for i in keep], dtype=object) if has_split else None,
        meta=dict(segment_features.get("meta") or {}),
    )
    report = {
        "n_documents_in": len(doc_ids),
        "n_documents_used": len(docs),
        "label_names": label_names,
        "class_counts": {c: int(counts[c]) for c in label_names},
        "label_map": dict(label_map or {}),
        "min_class_size": int(min_class_size),
        "dropped_classes": small,
        "excluded": excluded,
    }
    return docs, report


def _check_documents(documents: pd.DataFrame) -> None:
    for col in ("doc_id", "label"):
        if col not in documents.columns:
            raise DataError(f"documents table has no '{col}' column (columns: "
                            f"{list(documents.columns)})")
    if documents["doc_id"].duplicated().any():
        dups = documents.loc[documents["doc_id"].duplicated(), "doc_id"].tolist()
        raise DataError(f"documents table has duplicate doc_id values: {dups[:20]}")


def sorted_rows(rows_by_doc: Mapping[str, np.ndarray], seg_idx: np.ndarray, doc_id: str
                ) -> np.ndarray:
    """The feature rows of ``doc_id`` in ``seg_idx`` order."""
    rows = rows_by_doc[doc_id]
    return rows[np.argsort(seg_idx[rows], kind="stable")]


def rows_by_doc(index: pd.DataFrame, documents: pd.DataFrame) -> dict[str, np.ndarray]:
    """Feature rows of every document of the table (an error names documents without any)."""
    rows = {str(k): np.asarray(v, dtype=np.int64)
            for k, v in index.groupby(index["doc_id"].astype(str), sort=False).indices.items()}
    missing = [d for d in documents["doc_id"].astype(str) if d not in rows]
    if missing:
        raise DataError(f"segment_features has no segments for {len(missing)} document(s) of the "
                        f"documents table: {missing[:20]} (re-run the embedding pipeline)")
    return rows


def _optional_column(documents: pd.DataFrame, name: str) -> list[str | None]:
    return ([clean_value(v) for v in documents[name].tolist()] if name in documents.columns
            else [None] * len(documents))


def _splits(documents: pd.DataFrame, doc_ids: list[str]) -> list[str | None]:
    """The ``split`` column checked: train/test only, on every document or on none."""
    splits = _optional_column(documents, "split")
    bad_split = sorted({s for s in splits if s is not None and s not in ("train", "test")})
    if bad_split:
        raise DataError(f"documents table: split values must be 'train' or 'test', got {bad_split}")
    if any(s is not None for s in splits) and any(s is None for s in splits):
        rows = [d for d, s in zip(doc_ids, splits, strict=True) if s is None][:20]
        raise DataError(f"documents table: some documents have a split and others not; "
                        f"documents without split: {rows}")
    return splits


def _labelled(doc_ids: list[str], mapped: list[str | None], splits: list[str | None],
              only_split: str | None) -> tuple[list[int], list[dict[str, str]]]:
    """Positions of the labelled documents of the wanted split, and the others with reasons."""
    has_split = any(s is not None for s in splits)
    keep, excluded = [], []
    for i, (d, lab) in enumerate(zip(doc_ids, mapped, strict=True)):
        if lab is None:
            excluded.append({"doc_id": d, "reason": "no label"})
        elif only_split is not None and has_split and splits[i] != only_split:
            excluded.append({"doc_id": d, "reason": f"split is '{splits[i]}', not '{only_split}'"})
        else:
            keep.append(i)
    return keep, excluded


def _drop_small_classes(keep: list[int], doc_ids: list[str], mapped: list[str | None],
                        min_class_size: int, excluded: list[dict[str, str]]
                        ) -> tuple[list[int], list[str]]:
    """Drop the documents of classes below ``min_class_size`` (each listed in ``excluded``)."""
    counts = Counter(mapped[i] for i in keep)
    small = sorted(c for c, n in counts.items() if n < min_class_size)
    if not small:
        return keep, small
    kept = []
    for i in keep:
        if mapped[i] in small:
            excluded.append({"doc_id": doc_ids[i], "reason":
                             f"class '{mapped[i]}' has {counts[mapped[i]]} document(s) < "
                             f"min_class_size={min_class_size}"})
        else:
            kept.append(i)
    return kept, small


def _gather(segment_features: Mapping[str, Any], index: pd.DataFrame,
            rows_of: dict[str, np.ndarray], doc_ids: list[str]):
    """Per document its feature rows in ``seg_idx`` order: audio, text and both masks."""
    audio_all = np.asarray(segment_features["audio"], dtype=np.float32)
    text_all = np.asarray(segment_features["text"], dtype=np.float32)
    am_all = np.asarray(segment_features["audio_mask"], dtype=bool)
    tm_all = np.asarray(segment_features["text_mask"], dtype=bool)
    seg_idx = index["seg_idx"].to_numpy()
    audio, text, am, tm, empty = [], [], [], [], []
    for d in doc_ids:
        rows = sorted_rows(rows_of, seg_idx, d)
        if not (am_all[rows].any() or tm_all[rows].any()):
            empty.append(d)
        audio.append(audio_all[rows])
        text.append(text_all[rows])
        am.append(am_all[rows])
        tm.append(tm_all[rows])
    if empty:
        raise DataError(f"documents with neither audio nor text features in any segment: "
                        f"{empty[:20]}")
    return audio, text, am, tm


def _check_features(sf: Mapping[str, Any]) -> None:
    need = ("index", "audio", "text", "audio_mask", "text_mask")
    absent = [k for k in need if k not in sf]
    if absent:
        raise DataError(f"segment_features lacks keys {absent} (has {sorted(sf)})")
    index = sf["index"]
    if not isinstance(index, pd.DataFrame) or not {"doc_id", "seg_idx"} <= set(index.columns):
        raise DataError("segment_features['index'] must be a DataFrame with doc_id and seg_idx")
    s = len(index)
    for k in ("audio", "text"):
        shape = np.shape(sf[k])
        if len(shape) != 2 or shape[0] != s:
            raise DataError(f"segment_features['{k}'] has shape {shape}, expected ({s}, dim)")
    for k in ("audio_mask", "text_mask"):
        if np.shape(sf[k]) != (s,):
            raise DataError(f"segment_features['{k}'] has shape {np.shape(sf[k])}, "
                            f"expected ({s},)")
