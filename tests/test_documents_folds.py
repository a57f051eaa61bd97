"""DocumentSet building, label handling and fold construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import synthetic_features

from hilbert_pipeline.documents import (
    DataError,
    LabelError,
    build_document_set,
    collate,
)
from hilbert_pipeline.folds import FoldError, iter_folds, make_folds


def test_document_set_tensors_and_masks():
    sf, docs = synthetic_features([4, 3], n_segments=(2, 5), audio_dim=3, text_dim=5, seed=0,
                                  missing_text_rate=0.3)
    ds, report = build_document_set(sf, docs)
    assert ds.label_names == ["c0", "c1"]
    assert report["class_counts"] == {"c0": 4, "c1": 3}
    assert ds.doc_ids == docs["doc_id"].tolist()  # manifest order kept
    # every document's rows are exactly its feature rows, in seg_idx order
    idx = sf["index"]
    for i, d in enumerate(ds.doc_ids):
        rows = np.flatnonzero(idx["doc_id"].to_numpy() == d)
        np.testing.assert_array_equal(ds.audio[i], sf["audio"][rows])
        np.testing.assert_array_equal(ds.text_mask[i], sf["text_mask"][rows])
    batch = collate(ds, [0, 1, 2])
    n_max = max(ds.audio[i].shape[0] for i in range(3))
    assert tuple(batch["audio"].shape) == (3, n_max, 3)
    assert tuple(batch["text"].shape) == (3, n_max, 5)
    for r in range(3):
        n = ds.audio[r].shape[0]
        assert batch["audio_mask"][r, :n].all() and not batch["audio_mask"][r, n:].any()
        assert not batch["text_mask"][r, n:].any()
    assert batch["labels"].tolist() == ds.labels[:3].tolist()


def test_labels_sorted_stable_and_label_map_merges():
    sf, docs = synthetic_features([3, 3, 2, 2], seed=1)
    docs["label"] = docs["label"].map({"c0": "zeta", "c1": "alpha", "c2": "Whig",
                                       "c3": "Federalist"})
    ds, report = build_document_set(sf, docs, label_map={"Whig": "other", "Federalist": "other"})
    assert ds.label_names == ["alpha", "other", "zeta"]
    assert report["class_counts"] == {"alpha": 3, "other": 4, "zeta": 3}
    # the label encoding does not depend on document order
    ds2, _ = build_document_set(sf, docs.iloc[::-1].reset_index(drop=True),
                                label_map={"Whig": "other", "Federalist": "other"})
    assert ds2.label_names == ds.label_names
    assert dict(zip(ds2.doc_ids, ds2.labels, strict=True)) == dict(
        zip(ds.doc_ids, ds.labels, strict=True))


def test_min_class_size_drops_and_lists_documents():
    sf, docs = synthetic_features([5, 4, 2], seed=2)
    ds, report = build_document_set(sf, docs, min_class_size=3)
    assert ds.label_names == ["c0", "c1"]
    assert report["dropped_classes"] == ["c2"]
    dropped = [e["doc_id"] for e in report["excluded"]]
    assert sorted(dropped) == sorted(docs.loc[docs["label"] == "c2", "doc_id"])
    assert all("min_class_size=3" in e["reason"] for e in report["excluded"])
    assert len(ds) + len(dropped) == len(docs)


def test_unlabelled_documents_are_listed_not_silently_dropped():
    sf, docs = synthetic_features([3, 3], seed=3)
    docs.loc[0, "label"] = None
    ds, report = build_document_set(sf, docs)
    assert len(ds) == 5
    assert report["excluded"] == [{"doc_id": docs.loc[0, "doc_id"], "reason": "no label"}]


def test_too_small_classes_for_folds_is_a_clear_error():
    sf, docs = synthetic_features([6, 2, 1], seed=4)
    with pytest.raises(LabelError) as e:
        build_document_set(sf, docs, min_docs_per_class=3)
    assert "'c1': 2" in str(e.value) and "'c2': 1" in str(e.value)
    assert "c0" not in str(e.value)


def test_missing_documents_in_features_is_an_error():
    sf, docs = synthetic_features([3, 3], seed=5)
    extra = pd.DataFrame([{"doc_id": "ghost", "label": "c0"}])
    with pytest.raises(DataError, match="ghost"):
        build_document_set(sf, pd.concat([docs, extra], ignore_index=True))


def test_folds_disjoint_stratified_and_cover_everything():
    sf, docs = synthetic_features([20, 10, 5], seed=6)
    ds, _ = build_document_set(sf, docs)
    folds = make_folds(ds, n_splits=5, n_repeats=2, seed=0)
    seen = list(iter_folds(folds, ds))
    assert len(seen) == 10
    for r in (0, 1):
        tests = [set(te) for rr, _, _, te in seen if rr == r]
        assert set().union(*tests) == set(range(len(ds)))  # every document tested once
        assert sum(len(t) for t in tests) == len(ds)
    for _, _, tr, te in seen:
        assert not set(tr) & set(te)
        # stratified: every class in every test fold, in proportion
        counts = np.bincount(ds.labels[te], minlength=3)
        assert counts.tolist() == [4, 2, 1]
    # repeats differ, and the same seed gives the same table
    r0 = folds[(folds.repeat == 0) & (folds.role == "test")].sort_values("doc_id")["fold"]
    r1 = folds[(folds.repeat == 1) & (folds.role == "test")].sort_values("doc_id")["fold"]
    assert not np.array_equal(r0.to_numpy(), r1.to_numpy())
    pd.testing.assert_frame_equal(folds, make_folds(ds, 5, 2, 0))


def test_grouped_folds_never_split_a_group():
    sf, docs = synthetic_features([12, 12], seed=7, groups_per_class=4)
    ds, _ = build_document_set(sf, docs)
    folds = make_folds(ds, n_splits=4, n_repeats=1, seed=1)
    group = dict(zip(ds.doc_ids, ds.groups, strict=True))
    for _, part in folds.groupby("fold"):
        tr = {group[d] for d in part.loc[part.role == "train", "doc_id"]}
        te = {group[d] for d in part.loc[part.role == "test", "doc_id"]}
        assert not tr & te


def test_too_few_groups_say_what_to_do_and_narrow_classes_are_named(caplog):
    import dataclasses
    import logging

    sf, docs = synthetic_features([12, 12], seed=7, groups_per_class=2)  # 4 groups
    ds, _ = build_document_set(sf, docs)
    with pytest.raises(FoldError, match="only 4 groups .* for evaluation.n_splits=5 folds.*"
                                        "lower evaluation.n_splits to 4 or fewer"):
        make_folds(ds, n_splits=5, n_repeats=1, seed=1)
    one = dataclasses.replace(ds, groups=np.array(["g"] * len(ds), dtype=object))
    with pytest.raises(FoldError, match="every document is in the same group"):
        make_folds(one, n_splits=2, n_repeats=1, seed=1)
    # each class in 2 groups, 3 folds: some fold trains without a class: a warning names them
    with caplog.at_level(logging.WARNING, logger="hilbert_pipeline.folds"):
        make_folds(ds, n_splits=3, n_repeats=1, seed=1)
    [rec] = [r for r in caplog.records if "fewer groups than the 3 folds" in r.getMessage()]
    assert set(ds.label_names) <= set(rec.getMessage().replace("'", " ").split())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hilbert_pipeline.folds"):
        make_folds(ds, n_splits=2, n_repeats=1, seed=1)
    assert not [r for r in caplog.records if "fewer groups" in r.getMessage()]


def test_fixed_split_column_gives_one_fold():
    sf, docs = synthetic_features([10, 6], seed=8, split_test_fraction=0.3)
    ds, _ = build_document_set(sf, docs)
    folds = make_folds(ds, n_splits=5, n_repeats=3, seed=0)
    (r, f, tr, te), = list(iter_folds(folds, ds))
    assert (r, f) == (0, 0)
    assert {ds.doc_ids[i] for i in te} == set(docs.loc[docs["split"] == "test", "doc_id"])
    assert len(tr) + len(te) == len(ds)
    # training on the train split only
    ds_train, report = build_document_set(sf, docs, only_split="train")
    assert set(ds_train.doc_ids) == set(docs.loc[docs["split"] == "train", "doc_id"])
    assert len(report["excluded"]) == len(te)


def test_stale_folds_table_is_rejected():
    sf, docs = synthetic_features([6, 6], seed=9)
    ds, _ = build_document_set(sf, docs)
    folds = make_folds(ds, 3, 1, 0)
    smaller = ds.subset(range(len(ds) - 1))
    with pytest.raises(FoldError, match="not in the data"):
        list(iter_folds(folds, smaller))
    bigger_folds = folds[folds["doc_id"] != ds.doc_ids[0]]
    with pytest.raises(FoldError, match="missing"):
        list(iter_folds(bigger_folds, ds))
