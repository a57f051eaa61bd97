"""Segment crops (``crop_segments``) and label-free pretraining (``pretrain_epochs``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set, collate, crop_windows
from hilbert_pipeline.model import HilbertLoss
from hilbert_pipeline.training.params import build_config
from hilbert_pipeline.training.trainer import TrainingParams, _Run, fit, predict

MODEL = {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2, "wide_path": False}
OPTIM = {"epochs": 3, "batch_size": 4, "lr": 5e-3, "num_threads": 1}


@pytest.fixture
def docs():
    sf, table = synthetic_features([8, 6, 4], n_segments=(2, 9), audio_dim=6, text_dim=10,
                                   seed=0, signal=1.5, missing_text_rate=0.3)
    ds, _ = build_document_set(sf, table)
    return ds


def test_collate_spans_cut_features_and_masks_alike(docs):
    idx = [0, 3, 5]
    spans = [(1, 3), (0, 2), (2, 4)]
    spans = [(min(a, docs.audio[i].shape[0] - 1), min(b, docs.audio[i].shape[0]))
             for i, (a, b) in zip(idx, spans, strict=True)]
    batch = collate(docs, idx, spans)
    assert batch["labels"].tolist() == docs.labels[idx].tolist()
    for r, (i, (lo, hi)) in enumerate(zip(idx, spans, strict=True)):
        n = hi - lo
        np.testing.assert_array_equal(batch["audio"][r, :n].numpy(), docs.audio[i][lo:hi])
        np.testing.assert_array_equal(batch["text"][r, :n].numpy(), docs.text[i][lo:hi])
        np.testing.assert_array_equal(batch["audio_mask"][r, :n].numpy(), docs.audio_mask[i][lo:hi])
        np.testing.assert_array_equal(batch["text_mask"][r, :n].numpy(), docs.text_mask[i][lo:hi])
        assert not batch["audio_mask"][r, n:].any() and not batch["text_mask"][r, n:].any()


@pytest.mark.parametrize("n,length", [(9, 4), (10, 4), (4, 4), (3, 5), (7, 2)])
def test_crop_windows_cover_the_document(n, length):
    windows = crop_windows(n, length)
    covered = set()
    for a, b in windows:
        assert 0 <= a < b <= n and b - a == min(n, length)
        covered.update(range(a, b))
    assert covered == set(range(n)) and windows[-1][1] == n


def test_training_crops_keep_masks_and_labels(docs):
    cfg = build_config(docs, {**MODEL, "crop_segments": 3})
    run = _Run(cfg, docs, docs.subset([]), TrainingParams(**OPTIM), seed=0)
    idx = list(range(len(docs)))
    starts = set()
    for _ in range(5):
        spans = run.crops(docs, idx)
        batch = collate(docs, idx, spans)
        assert batch["labels"].tolist() == docs.labels.tolist()
        for r, (lo, hi) in enumerate(spans):
            n = docs.audio[r].shape[0]
            assert hi - lo == min(n, 3) and 0 <= lo and hi <= n
            np.testing.assert_array_equal(batch["audio_mask"][r, :hi - lo].numpy(),
                                          docs.audio_mask[r][lo:hi])
            np.testing.assert_array_equal(batch["text_mask"][r, :hi - lo].numpy(),
                                          docs.text_mask[r][lo:hi])
            np.testing.assert_array_equal(batch["text"][r, :hi - lo].numpy(),
                                          docs.text[r][lo:hi])
            starts.add((r, lo))
    assert len(starts) > len(docs)  # the windows move between draws
    assert _Run(build_config(docs, MODEL), docs, docs.subset([]), TrainingParams(**OPTIM),
                seed=0).crops(docs, idx) is None


def test_multicrop_prediction_is_the_mean_over_windows(docs):
    cfg = build_config(docs, {**MODEL, "crop_segments": 3})
    model = fit(cfg, docs, None, TrainingParams(**OPTIM), seed=0).model
    p = predict(model, docs, batch_size=5)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    model.eval()
    for i in (0, 4, 11):
        windows = crop_windows(docs.audio[i].shape[0], 3)
        with torch.no_grad():
            by_window = [torch.softmax(model(*[collate(docs, [i], [w])[k] for k in
                                               ("audio", "text", "audio_mask", "text_mask")]
                                             ).logits, -1)[0].numpy() for w in windows]
        np.testing.assert_allclose(p[i], np.mean(by_window, axis=0), rtol=1e-5, atol=1e-6)
    # a model without crops predicts from whole documents
    whole = fit(build_config(docs, MODEL), docs, None, TrainingParams(**OPTIM), seed=0).model
    assert predict(whole, docs).shape == p.shape


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_pretraining_uses_no_labels(docs):
    """The same documents with their labels shuffled (same class counts) give the same weights
    after pretraining; pretraining moves the fusion layers and leaves the classifier alone."""
    cfg = build_config(docs, MODEL)
    tp = TrainingParams(**OPTIM)
    shuffled = docs.subset(np.arange(len(docs)))
    shuffled.labels = np.random.default_rng(1).permutation(docs.labels)
    assert (shuffled.labels != docs.labels).any()
    runs, rows, before = [], [], None
    for d in (docs, shuffled):  # one after the other: dropout draws from the global generator
        runs.append(_Run(cfg, d, d.subset([]), tp, seed=0))
        before = before or _state(runs[0].model)
        rows.append(runs[-1].pretrain(d, 3))
    assert rows[0] == rows[1] and len(rows[0]) == 3 and "cls" not in rows[0][0]
    assert {"dual", "cka", "mi"} <= set(rows[0][0])
    after, other = _state(runs[0].model), _state(runs[1].model)
    for k in after:
        torch.testing.assert_close(after[k], other[k], rtol=0, atol=0)
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert any(k.startswith("proj") for k in moved)
    assert not any(k.startswith(("head.", "segment_head.")) for k in moved), moved


def test_fit_with_pretraining_differs_from_fit_without(docs):
    cfg = build_config(docs, MODEL)
    a = fit(cfg, docs, None, TrainingParams(**OPTIM), seed=0).model
    b = fit(cfg, docs, None, TrainingParams(**OPTIM, pretrain_epochs=2), seed=0).model
    assert not np.allclose(predict(a, docs), predict(b, docs))


def test_unsupervised_loss_has_alignment_terms_only(docs):
    cfg = build_config(docs, MODEL)
    run = _Run(cfg, docs, docs.subset([]), TrainingParams(**OPTIM), seed=0)
    batch = collate(docs, range(8))
    out = run.model(batch["audio"], batch["text"], batch["audio_mask"], batch["text_mask"])
    terms = HilbertLoss(cfg)(out, None)
    assert "cls" not in terms and "lb" not in terms and {"dual", "cka", "mi"} <= set(terms)
    torch.testing.assert_close(terms["total"], 0.1 * (terms["dual"] + terms["cka"] + terms["mi"]))
