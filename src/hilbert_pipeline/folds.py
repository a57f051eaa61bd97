"""Evaluation folds, computed once and saved so every method sees the identical partition.

Table layout (one row per repeat x fold x document): ``repeat, fold, doc_id, role`` with
``role`` in ``{"train", "test"}``. The long layout covers cross-validation and a fixed
``split`` column alike.

* No ``split`` column: repeated stratified k-fold. With groups, ``StratifiedGroupKFold``
  (a group never straddles train and test); otherwise ``StratifiedKFold``. Repeat ``r`` shuffles
  with seed ``seed + r``, so repeats differ and the whole table is reproducible from ``seed``.
* ``split`` column present: one fold (repeat 0, fold 0) with the given train/test documents; more
  repeats would be identical, so ``n_repeats`` is ignored there (and said so in the log).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from hilbert_pipeline.documents import DocumentSet, LabelError
from hilbert_pipeline.errors import UserError

log = logging.getLogger(__name__)

FOLD_COLUMNS = ["repeat", "fold", "doc_id", "role"]


class FoldError(UserError):
    """A folds table does not fit the documents it is applied to."""


def stratified_splitter(n_splits: int, groups, seed: int):
    """``StratifiedGroupKFold`` when there are ``groups`` (a group never straddles train and test),
    else ``StratifiedKFold``; both shuffled with ``seed``. Shared by the outer folds, the inner
    validation split of the trainer and the logistic regression's inner CV."""

    cls = StratifiedGroupKFold if groups is not None else StratifiedKFold
    return cls(n_splits=n_splits, shuffle=True, random_state=int(seed) % 2**32)


def make_folds(docs: DocumentSet, n_splits: int, n_repeats: int, seed: int) -> pd.DataFrame:
    """Build the folds table for ``docs`` (see module docstring)."""
    if docs.splits is not None:
        if n_repeats != 1:
            log.info("documents carry a fixed train/test split: n_repeats=%d ignored", n_repeats)
        train = [d for d, s in zip(docs.doc_ids, docs.splits, strict=True) if s == "train"]
        test = [d for d, s in zip(docs.doc_ids, docs.splits, strict=True) if s == "test"]
        if not train or not test:
            raise FoldError(f"fixed split needs train and test documents, got {len(train)} train "
                            f"and {len(test)} test (manifest.csv's split column: mark some rows "
                            "train and some test, or leave it empty for cross-validation)")
        rows = [(0, 0, d, "train") for d in train] + [(0, 0, d, "test") for d in test]
        return pd.DataFrame(rows, columns=FOLD_COLUMNS)

    if n_splits < 2:
        raise FoldError(f"n_splits must be >= 2, got {n_splits}")
    if n_repeats < 1:
        raise FoldError(f"n_repeats must be >= 1, got {n_repeats}")
    counts = docs.class_counts()
    small = {docs.label_names[k]: int(n) for k, n in enumerate(counts) if n < n_splits}
    if small:
        raise LabelError(f"classes with fewer documents than the {n_splits} folds: {small} "
                         "(every test fold needs one of each: add documents, lower "
                         "evaluation.n_splits, or merge classes with classes.label_map)")
    if docs.groups is not None:
        n_groups = len(set(docs.groups))
        if n_groups < 2:
            raise FoldError("every document is in the same group (manifest.csv's group column), "
                            "and a group is never split between train and test: give finer "
                            "groups, or leave the column empty")
        if n_groups < n_splits:
            raise FoldError(
                f"the documents fall into only {n_groups} groups (manifest.csv's group column) "
                f"for evaluation.n_splits={n_splits} folds; a group is never split, so every fold "
                f"needs groups of its own: lower evaluation.n_splits to {n_groups} or "
                "fewer, or give finer groups")
        narrow = {docs.label_names[k]: len(set(docs.groups[docs.labels == k]))
                  for k in range(len(docs.label_names)) if counts[k]}
        narrow = {c: g for c, g in narrow.items() if g < n_splits}
        if narrow:
            log.warning("classes whose documents fall into fewer groups than the %d folds: %s; "
                        "in a fold that tests all of a class's groups, no training document has "
                        "the class (finer groups, or fewer folds, avoid it)", n_splits, narrow)
    y = docs.labels
    rows = []
    x_dummy = np.zeros((len(docs), 1))
    for r in range(n_repeats):
        splits = stratified_splitter(n_splits, docs.groups, seed + r).split(
            x_dummy, y, groups=docs.groups)
        for f, (tr, te) in enumerate(splits):
            rows += [(r, f, docs.doc_ids[i], "train") for i in tr]
            rows += [(r, f, docs.doc_ids[i], "test") for i in te]
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def iter_folds(folds: pd.DataFrame, docs: DocumentSet):
    """Yield ``(repeat, fold, train_idx, test_idx)`` (positions in ``docs``), validating ``folds``.

    Each fold must cover every document of ``docs`` (train or test, not both), test parts of one
    repeat must not overlap, and the table must not name unknown documents: a stale folds file
    (documents changed since it was written) is an error, not a silent re-partition.
    """
    missing_cols = [c for c in FOLD_COLUMNS if c not in folds.columns]
    if missing_cols:
        raise FoldError(f"folds table lacks columns {missing_cols}")
    pos = {d: i for i, d in enumerate(docs.doc_ids)}
    ids = folds["doc_id"].astype(str)
    unknown = sorted(set(ids) - set(pos))
    if unknown:
        raise FoldError(f"folds table names documents that are not in the data: {unknown[:20]} "
                        f"(stale folds file? re-run the evaluation pipeline's fold node)")
    bad_roles = sorted(set(folds["role"]) - {"train", "test"})
    if bad_roles:
        raise FoldError(f"folds table has unknown roles {bad_roles}")
    seen_test: dict[int, set[int]] = {}
    for (r, f), part in folds.groupby(["repeat", "fold"], sort=True):
        pid = part["doc_id"].astype(str)
        train = [pos[d] for d in pid[part["role"] == "train"]]
        test = [pos[d] for d in pid[part["role"] == "test"]]
        if set(train) & set(test):
            raise FoldError(f"repeat {r} fold {f}: documents in both train and test")
        if not train or not test:
            raise FoldError(f"repeat {r} fold {f}: empty train or test part")
        absent = set(range(len(docs))) - set(train) - set(test)
        if absent:
            raise FoldError(f"repeat {r} fold {f}: documents missing from the folds table: "
                            f"{sorted(docs.doc_ids[i] for i in absent)[:20]} (stale folds file?)")
        prev = seen_test.setdefault(int(r), set())
        if prev & set(test):
            raise FoldError(f"repeat {r}: test parts of different folds overlap")
        prev |= set(test)
        yield int(r), int(f), np.array(train, dtype=np.int64), np.array(test, dtype=np.int64)
