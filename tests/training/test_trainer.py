"""Trainer, checkpoints, methods and the evaluation engine on small synthetic features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set, collate
from hilbert_pipeline.evaluation import evaluate as ev
from hilbert_pipeline.evaluation import report as rp
from hilbert_pipeline.evaluation.methods import MethodError, resolve_methods
from hilbert_pipeline.folds import make_folds
from hilbert_pipeline.metrics import macro_f1
from hilbert_pipeline.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from hilbert_pipeline.training.params import ParamsError, build_config, resolve_training_settings
from hilbert_pipeline.training.trainer import (
    TrainingError,
    TrainingParams,
    _batches,
    _Run,
    fit,
    inner_split,
    predict,
)

# the deep model's training mechanics; the wide (pooled logistic-regression) path has its own tests
MODEL = {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2, "wide_path": False}
#: a mixture with the plain average (``with_wide``); the default's weight by inner CV: AUTO
WIDE = {**MODEL, "wide_path": True, "wide_weight": 0.5}
RESIDUAL = {**WIDE, "wide_combine": "residual"}
#: the early-stopping machinery is what most tests here check: an inner validation split on
#: (the default schedule, fixed epochs with weight averaging, has its own test)
OPTIM = {"epochs": 4, "batch_size": 4, "lr": 5e-3, "patience": 3, "val_fraction": 0.2,
         "weight_average": 0.0}


def tp(**changes) -> TrainingParams:
    return TrainingParams(**{**OPTIM, **changes})


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def docs():
    sf, table = synthetic_features([8, 6, 4], n_segments=(2, 5), audio_dim=6, text_dim=10,
                                   seed=0, signal=1.5, missing_text_rate=0.2)
    ds, _ = build_document_set(sf, table)
    return ds


def test_fit_history_has_every_term_and_early_stopping_state(docs):
    cfg = build_config(docs, MODEL)
    res = fit(cfg, docs, None, tp(refit=False), seed=0)
    h = res.history
    for col in ("train_cls", "train_dual", "train_cka", "train_mi", "train_lb", "train_total",
                "train_mi_audio", "train_mi_text", "val_macro_f1", "val_mi_audio"):
        assert col in h.columns and h[col].notna().all(), col
    assert h["best"].sum() == 1
    assert res.best_val_macro_f1 == h["val_macro_f1"].max()
    assert set(res.train_doc_ids).isdisjoint(res.val_doc_ids)
    assert len(res.train_doc_ids) + len(res.val_doc_ids) == len(docs)
    # the restored model is the best epoch's: its validation F1 is reproduced
    from sklearn.metrics import f1_score
    val = docs.select_ids(res.val_doc_ids)
    p = predict(res.model, val)
    assert f1_score(val.labels, p.argmax(1), average="macro", zero_division=0) == pytest.approx(
        res.best_val_macro_f1)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    assert res.refit_epochs is None


def test_refit_trains_on_every_training_document_for_the_chosen_epochs(docs):
    # without members: their inner cross-validation trains for the run's own epoch count
    cfg = build_config(docs, {**MODEL, "unimodal_members": False})
    res = fit(cfg, docs, None, tp(epochs=6), seed=0)
    assert res.refit_epochs == res.best_epoch >= 1
    assert sorted(res.train_doc_ids) == sorted(docs.doc_ids)  # validation documents included
    assert res.val_doc_ids and set(res.val_doc_ids) < set(docs.doc_ids)
    # the same as training on all documents for best_epoch epochs without any validation split
    direct = fit(cfg, docs, docs.subset([]), tp(epochs=res.best_epoch), seed=0)
    np.testing.assert_array_equal(predict(res.model, docs), predict(direct.model, docs))
    # and not what the selection run alone gives (which never saw the validation documents)
    sel = fit(cfg, docs, None, tp(epochs=6, refit=False), seed=0)
    assert not np.allclose(predict(res.model, docs), predict(sel.model, docs))


def test_grouped_inner_split_never_splits_a_group():
    sf, table = synthetic_features([12, 9, 6], n_segments=(2, 3), audio_dim=4, text_dim=4,
                                   seed=1, groups_per_class=3)
    grouped, _ = build_document_set(sf, table)
    tr, va = inner_split(grouped, 0.25, seed=0)
    assert len(va) and not set(grouped.groups[tr]) & set(grouped.groups[va])
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(grouped)))


def test_temperature_is_restored_with_the_best_epoch(docs):
    cfg = build_config(docs, MODEL)
    res = fit(cfg, docs, None, tp(epochs=8, lr=5e-2, refit=False), seed=0)
    h = res.history
    kept = h.loc[h["best"], "temperature"].item()
    assert res.model.temperature.item() == pytest.approx(kept, rel=1e-6)
    assert h["temperature"].nunique() > 1  # it is learned


def test_same_seed_same_model_different_seed_differs(docs):
    cfg = build_config(docs, MODEL)
    a = predict(fit(cfg, docs, None, tp(), seed=3).model, docs)
    b = predict(fit(cfg, docs, None, tp(), seed=3).model, docs)
    c = predict(fit(cfg, docs, None, tp(), seed=4).model, docs)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_on_epoch_end_can_stop_training(docs):
    class Prune(Exception):
        pass

    calls = []

    def cb(epoch, f1):
        calls.append((epoch, f1))
        if epoch == 2:
            raise Prune

    with pytest.raises(Prune):
        fit(build_config(docs, MODEL), docs, None, tp(epochs=10), 0, on_epoch_end=cb)
    assert [e for e, _ in calls] == [1, 2] and all(isinstance(f, float) for _, f in calls)


def test_default_schedule_trains_every_epoch_and_keeps_the_averaged_weights(docs):
    """No validation split: every epoch runs, no refit, and the model kept is the average of
    the weights after each of the last ``weight_average`` share of the epochs."""
    from hilbert_pipeline.training import trainer

    cfg = build_config(docs, MODEL)
    defaults = TrainingParams()
    assert defaults.val_fraction == 0 and defaults.weight_average > 0
    snapshots = []
    original = trainer._Run.accumulate

    def spy(run):
        snapshots.append({k: v.detach().clone() for k, v in run.model.state_dict().items()})
        original(run)

    trainer._Run.accumulate = spy
    try:
        res = fit(cfg, docs, None, TrainingParams(epochs=6, batch_size=4, weight_average=0.5,
                                                  member_folds=0), seed=0)
    finally:
        trainer._Run.accumulate = original
    assert res.history["epoch"].tolist() == list(range(1, 7)) and res.refit_epochs is None
    assert len(snapshots) == 3  # epochs 4, 5, 6
    name = "head.experts.0.0.weight"
    mean = sum(s[name] for s in snapshots) / 3
    torch.testing.assert_close(res.model.state_dict()[name], mean)
    assert not torch.allclose(snapshots[-1][name], mean)  # not simply the last state


def test_monitor_documents_feed_the_callback_and_never_the_model(docs):
    """Without an inner split, ``monitor_docs`` give the callback (a pruner) a macro-F1 after
    every epoch; the trained model is the same as without them."""
    cfg = build_config(docs, MODEL)
    optim = TrainingParams(epochs=3, batch_size=4, weight_average=0.5)
    seen: list = []
    held = docs.subset(range(5))
    with_monitor = fit(cfg, docs, None, optim, seed=0, monitor_docs=held,
                       on_epoch_end=lambda e, f: seen.append((e, f)))
    assert [e for e, _ in seen] == [1, 2, 3] and all(0.0 <= f <= 1.0 for _, f in seen)
    plain_seen: list = []
    plain = fit(cfg, docs, None, optim, seed=0, on_epoch_end=lambda e, f: plain_seen.append(f))
    assert plain_seen == [None, None, None]
    np.testing.assert_allclose(predict(with_monitor.model, docs), predict(plain.model, docs))


def test_ties_keep_the_later_epoch_but_do_not_reset_the_patience(docs):
    """lr 0: the score never changes. "last" keeps the latest tying state yet stops after
    ``patience`` epochs; "first" keeps epoch 1."""
    cfg = build_config(docs, MODEL)
    last = fit(cfg, docs, None, tp(epochs=50, patience=2, lr=0.0, min_epochs=1, refit=False),
               seed=0)
    first = fit(cfg, docs, None, tp(epochs=50, patience=2, lr=0.0, min_epochs=1, refit=False,
                                    select_ties="first"), seed=0)
    assert len(last.history) == len(first.history) == 3
    assert last.best_epoch == 3 and first.best_epoch == 1


def test_patience_stops_early(docs):
    res = fit(build_config(docs, MODEL), docs, None, tp(epochs=50, patience=1, lr=0.0, min_epochs=1), seed=0)
    assert len(res.history) == 2  # lr 0: no improvement after epoch 1


def test_batches_never_leave_a_singleton():
    g = torch.Generator().manual_seed(0)
    for n in range(2, 30):
        for bs in (2, 3, 4, 7):
            bl = _batches(n, bs, g, None)
            assert all(len(b) >= 2 for b in bl)
            assert sorted(i for b in bl for i in b) == list(range(n))
    w = np.array([1.0, 1.0, 10.0])
    bl = _batches(300, 16, torch.Generator().manual_seed(0), w)
    flat = np.concatenate(bl)
    assert (flat == 2).mean() > 0.6  # weighted sampling draws the heavy item more often


def test_inner_split_stratified_keeps_singletons_in_train(docs):
    tr, va = inner_split(docs, 0.25, seed=0)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(docs)
    assert np.bincount(docs.labels[va], minlength=3).tolist() == [2, 2, 1]
    one = docs.subset([0, 1] + [i for i in range(len(docs)) if docs.labels[i] == 2][:1])
    tr, va = inner_split(one, 0.5, seed=0)
    lab = one.labels[0 if one.labels[0] != one.labels[1] else 2]
    assert all(one.labels[i] != lab or i in tr for i in range(len(one)))


def test_training_params_validation():
    with pytest.raises(TrainingError, match="batch_size"):
        TrainingParams(batch_size=1)
    with pytest.raises(TrainingError, match="unknown training parameters"):
        TrainingParams.from_dict({"epoch": 3})


def test_checkpoint_roundtrip_same_logits(docs, tmp_path):
    res = fit(build_config(docs, MODEL), docs, None, tp(epochs=2), seed=1)
    path = tmp_path / "m" / "model.pt"
    save_checkpoint(path, res.model, docs.label_names, docs.meta, res.training_params.to_dict(),
                    {"best_epoch": res.best_epoch, "ids": np.array([1, 2])})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left
    ck = load_checkpoint(path)
    assert ck.label_names == docs.label_names and ck.config == res.config
    assert ck.encoder_meta == docs.meta and ck.extra["ids"] == [1, 2]
    batch = collate(docs, range(len(docs)))
    args = (batch["audio"], batch["text"], batch["audio_mask"], batch["text_mask"])
    res.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ck.model(*args).logits, res.model(*args).logits)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"hello": 1}, bad)
    with pytest.raises(CheckpointError, match="not a HILBERT checkpoint"):
        load_checkpoint(bad)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_methods_registry_errors():
    with pytest.raises(MethodError, match="unknown methods"):
        resolve_methods(["hilbert", "bert"])
    with pytest.raises(MethodError, match="twice"):
        resolve_methods(["hilbert", "hilbert"])


def test_evaluation_identical_folds_and_reproducible(docs):
    folds = make_folds(docs, 3, 1, seed=0)
    methods = ["hilbert", "text_only", "concat_logreg", "majority", "stratified", "mlp_head"]
    run = ev.run_evaluation(docs, folds, methods, MODEL, {**OPTIM, "epochs": 2}, seed=0)
    # every method predicted exactly the same test documents in every fold
    sets = {m: sorted(map(tuple, part[["repeat", "fold", "doc_id"]].to_numpy().tolist()))
            for m, part in run.predictions.groupby("method")}
    ref = sets["hilbert"]
    assert all(s == ref for s in sets.values()) and len(ref) == len(docs)
    fm = run.fold_metrics
    assert len(fm) == 3 * len(methods)
    maj = fm[fm.method == "majority"]
    assert np.allclose(maj["balanced_accuracy"], 1 / 3)
    gates = run.gate_usage
    assert set(gates["method"]) == {"hilbert", "text_only"}  # MoE heads; MLP head has no gate
    g = gates.groupby(["method", "repeat", "fold"])["mean_weight"].sum()
    assert np.allclose(g, 1.0, atol=1e-5)
    assert set(run.mi["method"]) == {"hilbert", "mlp_head"}
    s = rp.summarize(fm)
    s2 = rp.summarize(ev.run_evaluation(docs, folds, methods, MODEL, {**OPTIM, "epochs": 2},
                                        seed=0).fold_metrics)
    assert json.dumps(s) == json.dumps(s2)
    pc = rp.per_class_table(run.predictions, docs.label_names)
    assert set(pc["support"][pc.method == "hilbert"]) == {8, 6, 4}
    cm, cmn = rp.confusion_matrices(run.predictions, "hilbert", docs.label_names)
    assert cm.sum() == len(docs) and np.allclose(cmn.sum(1), 1)
    assert rp.best_baseline(s) in {"text_only", "concat_logreg", "majority", "stratified"}
    md = rp.comparison_markdown(s, "3 folds", {"c0": 8, "c1": 6, "c2": 4})
    assert md.count("\n| ") == len(methods) + 1


def test_no_wide_rows_come_from_the_mixtures_own_network(docs):
    """With the default mixture, hilbert's network is trained exactly as no_wide: one fit
    serves both rows, and they equal the rows of a no_wide evaluated on its own."""
    folds = make_folds(docs, 3, 1, seed=0)
    optim = {**OPTIM, "epochs": 3, "val_fraction": 0.0, "weight_average": 0.5}
    both = ev.run_evaluation(docs, folds, ["hilbert", "no_wide", "majority"], WIDE, optim,
                             seed=0)
    alone = ev.run_evaluation(docs, folds, ["no_wide"], WIDE, optim, seed=0)
    fm = both.fold_metrics
    assert fm["method"].tolist() == ["hilbert", "no_wide", "majority"] * 3
    assert set(fm.loc[fm.method == "hilbert", "form"]) == {"mixture"}
    assert set(fm.loc[fm.method == "no_wide", "form"]) == {"deep"}
    np.testing.assert_allclose(fm.loc[fm.method == "no_wide", "macro_f1"],
                               alone.fold_metrics["macro_f1"])
    p = both.predictions
    cols = [c for c in p.columns if c.startswith("p_")]
    np.testing.assert_allclose(p.loc[p.method == "no_wide", cols].to_numpy(),
                               alone.predictions[cols].to_numpy(), atol=1e-6)
    assert not np.allclose(p.loc[p.method == "hilbert", cols].to_numpy(),
                           p.loc[p.method == "no_wide", cols].to_numpy())


def test_parallel_evaluation_gives_identical_results(docs):
    folds = make_folds(docs, 3, 1, seed=0)
    args = (docs, folds, ["hilbert", "concat_logreg"], MODEL,
            {**OPTIM, "epochs": 2, "num_threads": 1}, 0)
    a = ev.run_evaluation(*args, n_jobs=1)
    b = ev.run_evaluation(*args, n_jobs=2)
    import pandas as pd

    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    pd.testing.assert_frame_equal(a.fold_metrics.drop(columns="seconds"),
                                  b.fold_metrics.drop(columns="seconds"))


def test_method_overrides_are_routed(docs):
    folds = make_folds(docs, 3, 1, seed=0)
    run = ev.run_evaluation(docs, folds, ["concat_logreg", "hilbert"], MODEL,
                            {**OPTIM, "epochs": 1}, seed=0,
                            method_overrides={"concat_logreg": {"C": 0.01},
                                              "hilbert": {"epochs": 2, "n_experts": 3}})
    assert run.gate_usage["expert"].max() == 2
    with pytest.raises(MethodError, match="unknown override"):
        ev.run_evaluation(docs, folds, ["hilbert"], MODEL, OPTIM, 0,
                          method_overrides={"hilbert": {"bogus": 1}})
    with pytest.raises(MethodError, match="unknown methods"):
        ev.run_evaluation(docs, folds, ["hilbert"], MODEL, OPTIM, 0,
                          method_overrides={"bert": {}})


def test_use_tuned_reads_best_params(tmp_path):
    base = {"seed": 1, "model": {"d": 16, "lambda_cka": 0.1}, "optim": {"lr": 0.001}}
    s = resolve_training_settings(base)
    assert s.model_params == {"d": 16, "lambda_cka": 0.1} and s.source == "parameters"
    path = tmp_path / "best_params.json"
    tuned = {**base, "use_tuned": True, "best_params_path": str(path)}
    with pytest.raises(ParamsError, match="tuning pipeline"):
        resolve_training_settings(tuned)
    path.write_text(json.dumps({"lambda_cka": 0.7, "lr": 0.01, "n_experts": 2}))
    s = resolve_training_settings(tuned)
    assert s.model_params == {"d": 16, "lambda_cka": 0.7, "n_experts": 2}
    assert s.training_params["lr"] == 0.01 and s.source == str(path)
    path.write_text(json.dumps({"lamda_cka": 0.7}))
    with pytest.raises(ParamsError, match="lamda_cka"):
        resolve_training_settings(tuned)
    with pytest.raises(ParamsError, match="unknown keys"):
        resolve_training_settings({**base, "model": {"dd": 3}})
    with pytest.raises(ParamsError, match="seed"):
        resolve_training_settings({"model": {}})


def test_early_stopping_can_watch_the_validation_loss(docs):
    cfg = build_config(docs, MODEL)
    res = fit(cfg, docs, None, tp(epochs=8, patience=8, refit=False, select_on="loss"), seed=0)
    h = res.history
    assert res.best_epoch == int(h.loc[h["val_cls"].idxmin(), "epoch"])
    with pytest.raises(TrainingError, match="select_on"):
        tp(select_on="accuracy")


def _noise_audio_docs():
    """Text carries the class, audio is pure noise."""
    sf, table = synthetic_features([12, 10, 8], n_segments=(2, 4), audio_dim=6, text_dim=8,
                                   seed=5, signal=1.5)
    rng = np.random.default_rng(0)
    sf["audio"] = rng.normal(size=sf["audio"].shape).astype(np.float32)
    ds, _ = build_document_set(sf, table)
    return ds


def test_wide_path_starts_as_the_selected_logistic_regression_and_stays_fixed():
    from hilbert_pipeline.evaluation.methods import fit_logreg

    docs = _noise_audio_docs()
    cfg = build_config(docs, RESIDUAL)  # defaults: logreg start, frozen
    assert cfg.wide_path and cfg.wide_init == "logreg" and not cfg.wide_trainable
    res = fit(cfg, docs, docs.subset([]), tp(epochs=3), seed=0)
    w = res.model.wide.weight.detach().numpy()
    # the noise modality was left out of the wide path (its columns are 0), the text kept
    assert np.abs(w[:, :docs.audio_dim]).max() == 0.0
    assert np.abs(w[:, docs.audio_dim:]).max() > 0.0
    # with the deep logits at 0 the model is the text logistic regression chosen by inner CV
    untrained = fit(cfg, docs, docs.subset([]), tp(epochs=1, lr=0.0), seed=0)
    clf, _, _ = fit_logreg(docs, 0, ("text",), class_weight_power=cfg.class_weight_power,
                           inner_repeats=3)
    np.testing.assert_allclose(predict(untrained.model, docs),
                               clf.predict_proba(docs.pooled_features(("text",))), atol=1e-4)
    # frozen: training moved the deep branches, not the wide path
    torch.testing.assert_close(res.model.wide.weight, untrained.model.wide.weight)


def test_the_untrained_model_is_never_an_early_stopping_candidate():
    """Every form trains: a residual model started at the logistic regression is not kept as
    "epoch 0" even when no epoch improves on it (lr 0)."""
    docs = _noise_audio_docs()
    for cfg in (build_config(docs, RESIDUAL), build_config(docs, WIDE)):
        res = fit(cfg, docs, None, tp(epochs=3, lr=0.0, refit=False), seed=0)
        assert res.history["epoch"].min() == 1 and res.best_epoch >= 1


def test_the_default_trains_the_network_in_every_fold():
    """The default HILBERT trains the network in every fold, whatever the modalities carry: on
    a corpus whose audio is noise (where the old ``auto`` form predicted with a logistic
    regression alone) as on one where both carry the class; its linear member joins the
    average with at most half the weight (the network carries the rest), and the network
    without a linear member trains too."""
    for docs in (_noise_audio_docs(), _both_signal_docs()):
        default = build_config(docs, {k: v for k, v in MODEL.items() if k != "wide_path"})
        assert default.prediction_form == "mixture" and default.wide_weight == "auto"
        for cfg in (default, build_config(docs, MODEL)):
            res = fit(cfg, docs, None, tp(epochs=3, member_folds=2), seed=0)
            assert res.config.prediction_form in ("deep", "mixture")
            assert res.best_epoch >= 1 and res.refit_epochs >= 1
            assert np.isfinite(res.history["train_cls"]).all()
            if cfg is default:
                assert res.members["folds"] == 2 and res.members["linear"] <= 0.5
                assert float(res.model.wide_weight) == res.members["linear"]


def _both_signal_docs():
    """Both modalities carry the class."""
    sf, table = synthetic_features([12, 10, 8], n_segments=(2, 4), audio_dim=6, text_dim=8,
                                   seed=5, signal=1.0)
    return build_document_set(sf, table)[0]


def test_a_corpus_without_any_audio_gets_the_text_linear_member():
    """No recording at all: audio cannot carry signal, so "both" (which would tie with the text
    alone) is not a candidate: the linear member reads the text only."""
    sf, table = synthetic_features([12, 10, 8], n_segments=(2, 4), audio_dim=6, text_dim=8,
                                   seed=5, signal=1.0)
    sf["audio_mask"] = np.zeros_like(sf["audio_mask"])
    sf["audio"] = np.zeros_like(sf["audio"])
    docs = build_document_set(sf, table)[0]
    res = fit(build_config(docs, WIDE), docs, None, tp(epochs=2), seed=0)
    w = res.model.wide.weight.detach().numpy()
    assert np.abs(w[:, :docs.audio_dim]).max() == 0.0 and np.abs(w[:, docs.audio_dim:]).max() > 0


def test_a_mixtures_deep_member_is_the_model_trained_without_the_wide_path():
    """The deep member of a mixture learns, is early-stopped and refit exactly as ``no_wide``
    (same seed: same epochs, same weights); the prediction averages it with the wide path, and
    the untrained model is no early-stopping candidate."""
    from hilbert_pipeline.training import trainer

    docs = _both_signal_docs()
    trainer._WIDE_CACHE.clear()
    # without distillation, whose teachers are regressions of the same search
    mix = fit(build_config(docs, {**WIDE, "wide_combine": "mixture", "distill_weight": 0.0}),
              docs, None, tp(epochs=4), seed=3)
    # one inner-CV search, on every training document: the epoch-selection run, which the
    # refit replaces, needs no wide path
    assert len(trainer._WIDE_CACHE) == 1
    alone = fit(build_config(docs, {**MODEL, "distill_weight": 0.0}), docs, None, tp(epochs=4),
                seed=3)
    assert mix.history["epoch"].min() == 1
    assert mix.best_epoch == alone.best_epoch and mix.refit_epochs == alone.refit_epochs
    np.testing.assert_allclose(mix.history["val_macro_f1"], alone.history["val_macro_f1"])
    b = collate(docs, range(len(docs)))
    with torch.no_grad():
        out = mix.model(b["audio"], b["text"], b["audio_mask"], b["text_mask"])
    deep = torch.softmax(out.head_logits, -1).numpy()
    np.testing.assert_allclose(deep, predict(alone.model, docs), atol=1e-5)
    wide = mix.model._wide_logits({"audio": b["audio"], "text": b["text"]},
                                  {"audio": b["audio_mask"], "text": b["text_mask"]})
    np.testing.assert_allclose(predict(mix.model, docs),
                               0.5 * deep + 0.5 * torch.softmax(wide, -1).detach().numpy(),
                               atol=1e-5)


def test_the_wide_form_is_the_fitted_logistic_regression_and_trains_nothing():
    from hilbert_pipeline.evaluation.methods import fit_logreg

    docs = _noise_audio_docs()
    res = fit(build_config(docs, {**WIDE, "wide_combine": "wide"}), docs, None, tp(epochs=3),
              seed=0)
    assert res.config.wide_combine == "wide"
    assert res.history["epoch"].tolist() == [0] and res.best_epoch == 0
    assert res.refit_epochs is None and res.train_doc_ids == list(docs.doc_ids)
    clf, _, _ = fit_logreg(docs, 0, ("text",), class_weight_power=0.5, inner_repeats=3)
    np.testing.assert_allclose(predict(res.model, docs),
                               clf.predict_proba(docs.pooled_features(("text",))), atol=1e-4)


def test_the_linear_member_is_the_regression_for_a_document_missing_a_whole_modality():
    """One definition of the pooled features: documents without any recording (raw pooled
    audio 0, standardised like any value) get from the model's linear member exactly what the
    scikit-learn regression it copied predicts for them."""
    from hilbert_pipeline.evaluation.methods import fit_logreg

    sf, table = synthetic_features([16, 14, 12], n_segments=(2, 4), audio_dim=6, text_dim=8,
                                   seed=0, signal=1.0)
    docs = build_document_set(sf, table)[0]
    for i in range(0, len(docs), 4):  # a quarter of the documents have no audio at all
        docs.audio_mask[i] = np.zeros_like(docs.audio_mask[i])
        docs.audio[i] = np.zeros_like(docs.audio[i])
    res = fit(build_config(docs, {**WIDE, "wide_combine": "wide"}), docs, None, tp(epochs=1),
              seed=0)
    # both modalities carry the class: the member reads the audio columns too
    assert np.abs(res.model.wide.weight.detach().numpy()[:, :docs.audio_dim]).max() > 0
    mods = ("audio", "text")
    clf, _, _ = fit_logreg(docs, 0, mods, class_weight_power=0.5, inner_repeats=3)
    expect = clf.predict_proba(docs.pooled_features(mods))
    np.testing.assert_allclose(predict(res.model, docs), expect, atol=1e-4)
    missing = np.arange(0, len(docs), 4)
    np.testing.assert_allclose(predict(res.model, docs.subset(missing)), expect[missing],
                               atol=1e-4)


def test_the_shipped_training_parameters_are_the_code_defaults():
    """One owner per setting: conf/base/parameters_training.yml states HilbertConfig's and
    TrainingParams' own defaults (the measured recipe of docs/model.md), except the torch thread
    count, which the pipelines pin to 1 (small models) and the library leaves to PyTorch."""
    import dataclasses
    from pathlib import Path

    import yaml

    from hilbert_pipeline.model import HilbertConfig

    conf = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf/base/"
                           "parameters_training.yml").read_text())["training"]
    model = {f.name: f.default for f in dataclasses.fields(HilbertConfig)}
    optim = {f.name: f.default for f in dataclasses.fields(TrainingParams)}
    assert {k: v for k, v in conf["model"].items() if model[k] != v} == {}
    assert {k: v for k, v in conf["optim"].items() if optim[k] != v} == {"num_threads": 1}


def test_max_steps_cuts_the_epochs_of_a_large_corpus(docs):
    """``max_steps``: about that many optimiser steps at most; small corpora keep ``epochs``."""
    p = TrainingParams(epochs=60, batch_size=4, max_steps=2500)
    assert p.epochs_for(100) == 60  # 25 steps per epoch: 1500 steps
    assert p.epochs_for(500) == 20 and p.epochs_for(1000) == 10
    assert p.epochs_for(13) == 60  # 3 batches (a batch of one joins the previous)
    assert TrainingParams(epochs=60, max_steps=None).epochs_for(10_000) == 60
    assert TrainingParams(epochs=60, batch_size=4, max_steps=1).epochs_for(1000) == 1
    with pytest.raises(TrainingError, match="max_steps"):
        TrainingParams(max_steps=0)
    # a fit runs the cut number of epochs: 18 documents in batches of 4 = 4 steps per epoch
    res = fit(build_config(docs, MODEL), docs, None,
              tp(val_fraction=0.0, epochs=10, max_steps=8, weight_average=0.5), seed=0)
    assert res.history["epoch"].tolist() == [1, 2]


# ------------------------------------------------------------------ unimodal members
MEMBER_MODEL = {**MODEL, "unimodal_members": True}
MEMBER_OPTIM = {"epochs": 3, "batch_size": 4, "lr": 5e-3, "val_fraction": 0.0,
                "weight_average": 0.5, "member_folds": 2}


def test_no_members_rows_come_from_hilberts_fused_network(docs):
    """hilbert's fused network trains exactly as the no_members network: one fit serves both
    rows, and they equal the rows of a no_members evaluated on its own; hilbert's own rows
    (the members' average) differ from them, and the fold metrics record the weights."""
    folds = make_folds(docs, 3, 1, seed=0)
    both = ev.run_evaluation(docs, folds, ["hilbert", "no_members"], MEMBER_MODEL,
                             MEMBER_OPTIM, seed=0)
    alone = ev.run_evaluation(docs, folds, ["no_members"], MEMBER_MODEL, MEMBER_OPTIM, seed=0)
    fm = both.fold_metrics
    assert fm["method"].tolist() == ["hilbert", "no_members"] * 3
    p = both.predictions
    cols = [c for c in p.columns if c.startswith("p_")]
    np.testing.assert_allclose(p.loc[p.method == "no_members", cols].to_numpy(),
                               alone.predictions[cols].to_numpy(), atol=1e-6)
    h = fm[fm.method == "hilbert"]
    w = h[["weight_fused", "weight_text", "weight_audio"]].to_numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w[:, 0] >= 0.5).all()
    if (w[:, 0] < 1).any():  # some fold mixed a member in: its predictions differ
        assert not np.allclose(p.loc[p.method == "hilbert", cols].to_numpy(),
                               p.loc[p.method == "no_members", cols].to_numpy())
    # members off: the with_members ablation's fit serves hilbert's rows
    off = {**MODEL, "unimodal_members": False}
    default = ev.run_evaluation(docs, folds, ["hilbert", "with_members"], off, MEMBER_OPTIM,
                                seed=0)
    d = default.predictions
    np.testing.assert_allclose(d.loc[d.method == "hilbert", cols].to_numpy(),
                               alone.predictions[cols].to_numpy(), atol=1e-6)


def test_no_members_rows_of_the_default_mixture_come_from_hilberts_fit(docs):
    """The default form (unimodal members, the linear member weighted by inner CV): hilbert's
    fit serves the no_members rows (view "fused_linear": its fused network with the linear
    member, at the weight the inner CV chooses against the fused network alone), and they
    equal no_members fitted on its own, the linear member's weight per fold included."""
    mix = {**MEMBER_MODEL, "wide_path": True, "wide_weight": "auto"}
    assert ev.shared_fits(resolve_methods(["hilbert", "no_members"]), {}, mix) == {
        "hilbert": (("no_members", "fused_linear"),)}
    folds = make_folds(docs, 3, 1, seed=0)
    both = ev.run_evaluation(docs, folds, ["hilbert", "no_members"], mix, MEMBER_OPTIM, seed=0)
    alone = ev.run_evaluation(docs, folds, ["no_members"], mix, MEMBER_OPTIM, seed=0)
    p, fb, fa = both.predictions, both.fold_metrics, alone.fold_metrics
    cols = [c for c in p.columns if c.startswith("p_")]
    np.testing.assert_allclose(p.loc[p.method == "no_members", cols].to_numpy(),
                               alone.predictions[cols].to_numpy(), atol=1e-5)
    np.testing.assert_array_equal(fb.loc[fb.method == "no_members", "weight_linear"].to_numpy(),
                                  fa["weight_linear"].to_numpy())
    # one fit: the view's row carries the fit's time, the fit's own row too
    np.testing.assert_array_equal(fb.loc[fb.method == "no_members", "seconds"].to_numpy(),
                                  fb.loc[fb.method == "hilbert", "seconds"].to_numpy())


def test_member_weights_are_chosen_on_out_of_fold_predictions(docs):
    """The weights are those of the grid (members admitted by their out-of-fold macro-F1) whose
    average has the lowest log-loss on predictions of documents that the predicting network
    never trained on: recomputed here by hand."""
    from hilbert_pipeline.folds import stratified_splitter
    from hilbert_pipeline.model import MEMBERS
    from hilbert_pipeline.training.trainer import _train, member_grid, member_probabilities

    cfg = build_config(docs, MEMBER_MODEL)
    optim = TrainingParams(**MEMBER_OPTIM)
    res = fit(cfg, docs, None, optim, seed=3)
    chosen = res.members
    assert chosen["folds"] == 2 and chosen["reason"] is None
    weights = tuple(chosen["weights"][m] for m in MEMBERS)
    assert weights in member_grid(0.25, 0.5)
    np.testing.assert_allclose(res.model.member_weights.numpy(), weights)
    oof = {m: np.zeros((len(docs), docs.n_classes)) for m in MEMBERS}
    for a, b in stratified_splitter(2, None, 3).split(np.zeros(len(docs)), docs.labels):
        sub = docs.subset(a)  # the whole network, members trained, on the other fold only
        part = _train(cfg, sub, sub.subset([]), optim, 3, None, optim.epochs_for(len(sub)))[0]
        for m, p in member_probabilities(part, docs.subset(b)).items():
            oof[m][b] = p

    def log_loss(p):
        return -np.mean(np.log(p[np.arange(len(docs)), docs.labels]))

    for m in MEMBERS:
        assert chosen["log_loss"][m] == pytest.approx(log_loss(oof[m]), rel=1e-6)
        assert chosen["macro_f1"][m] == pytest.approx(macro_f1(docs.labels, oof[m]))
    # a member takes weight only if its own out-of-fold macro-F1 reaches the fused network's
    admitted = [m for m in MEMBERS[1:]
                if macro_f1(docs.labels, oof[m]) >= macro_f1(docs.labels, oof["fused"])]
    assert chosen["admitted"] == sorted(admitted)
    grid = [w for w in member_grid(0.25, 0.5)
            if all(x == 0 or m in admitted for x, m in zip(w[1:], MEMBERS[1:], strict=True))]
    scores = {w: log_loss(sum(x * oof[m] for x, m in zip(w, MEMBERS, strict=True))) for w in
              grid}
    assert chosen["log_loss"]["chosen"] == pytest.approx(min(scores.values()), rel=1e-6)
    assert scores[weights] == pytest.approx(min(scores.values()), rel=1e-6)
    # the prediction is the weighted average of the members' own probabilities
    own = member_probabilities(res.model, docs)
    mix = sum(x * own[m] for x, m in zip(weights, MEMBERS, strict=True))
    np.testing.assert_allclose(predict(res.model, docs), mix, atol=1e-5)


def test_member_probabilities_are_each_members_own_prediction_from_one_pass(docs):
    """Each member's probabilities equal the network's prediction with all the weight on that
    member, in one pass that leaves the model's member weights as they were (also with
    multi-crop prediction); a network without members is refused."""
    from hilbert_pipeline.model import MEMBERS
    from hilbert_pipeline.training.trainer import member_probabilities

    for extra in ({}, {"crop_segments": 3}):
        cfg = build_config(docs, {**MEMBER_MODEL, **extra})
        res = fit(cfg, docs, None, TrainingParams(**{**MEMBER_OPTIM, "member_folds": 0}), seed=5)
        model = res.model
        model.set_member_weights([0.5, 0.25, 0.25])
        own = member_probabilities(model, docs, batch_size=7)
        np.testing.assert_array_equal(model.member_weights.numpy(), [0.5, 0.25, 0.25])
        for i, m in enumerate(MEMBERS):
            model.set_member_weights(np.eye(len(MEMBERS))[i])
            np.testing.assert_allclose(own[m], predict(model, docs, member=True), atol=1e-6)
        assert not np.allclose(own["text"], own["fused"], atol=1e-3)
    with pytest.raises(ValueError, match="unimodal_members"):
        member_probabilities(fit(build_config(docs, {**MODEL, "unimodal_members": False}), docs, None,
                                 TrainingParams(**MEMBER_OPTIM), seed=5).model, docs)


def test_a_member_below_the_fused_networks_macro_f1_gets_no_weight_however_it_hedges():
    """Out of fold the fused network is right on 5 of 6 documents but confidently wrong on the
    sixth; the text member is right on 4 (macro-F1 below the fused network's) with moderate
    probabilities. Mixing it in lowers the log-loss, yet it is not admitted: the fused network
    keeps all the weight. Raise the text member's macro-F1 to the fused network's and it does
    take weight."""
    from hilbert_pipeline.training.trainer import weights_from_oof

    labels = np.array([0, 0, 0, 1, 1, 1])
    fused = np.array([[.9, .1]] * 3 + [[.1, .9]] * 2 + [[.99, .01]])
    text = np.array([[.6, .4]] * 2 + [[.4, .6]] + [[.4, .6]] * 2 + [[.6, .4]])
    audio = np.full((6, 2), .5)
    oof = {"fused": fused, "text": text, "audio": audio}

    def log_loss(p):
        return -np.mean(np.log(p[np.arange(6), labels]))

    assert log_loss(.5 * fused + .5 * text) < log_loss(fused)  # hedging pays in log-loss
    chosen = weights_from_oof(labels, oof, 0.25, 0.5)
    assert chosen["admitted"] == [] and chosen["weights"]["fused"] == 1.0, chosen
    better = {**oof, "text": np.array([[.6, .4]] * 3 + [[.4, .6]] * 2 + [[.6, .4]])}
    assert macro_f1(labels, better["text"]) >= macro_f1(labels, fused)
    chosen = weights_from_oof(labels, better, 0.25, 0.5)
    assert chosen["admitted"] == ["text"] and chosen["weights"]["text"] > 0, chosen
    assert chosen["weights"]["audio"] == 0.0


def test_a_modality_that_identifies_documents_is_read_through_the_other_member():
    """Text carries the label; every document has its own constant random 'voice' (audio that
    identifies the document and says nothing about the class). The fused network can memorise
    its training labels from the voice; the out-of-fold evidence moves weight to the text member
    and none to the audio member."""
    feats, documents = synthetic_features([14, 14, 14], n_segments=(3, 5), signal=0.6, seed=5)
    rng = np.random.default_rng(11)
    voices = {d: rng.normal(size=feats["audio"].shape[1]) * 3 for d in documents.doc_id}
    audio = np.stack([voices[d] for d in feats["index"]["doc_id"]])
    audio = audio + 0.01 * rng.normal(size=audio.shape)
    docs, _ = build_document_set({**feats, "audio": audio.astype(np.float32)}, documents)
    res = fit(build_config(docs, MEMBER_MODEL), docs, None,
              TrainingParams(**{**MEMBER_OPTIM, "epochs": 20, "member_folds": 3}), seed=0)
    w = res.members["weights"]
    assert w["text"] > 0 and w["audio"] == 0, res.members
    assert res.members["trained"] is True and "train_text_cls" in res.history.columns
    assert res.members["log_loss"]["text"] < res.members["log_loss"]["audio"]


def test_member_choice_falls_back_to_the_fused_network_when_documents_are_too_few(docs):
    few = docs.subset(range(5))  # 5 documents cannot make 3 folds of 2 or more
    res = fit(build_config(docs, MEMBER_MODEL), few, None,
              TrainingParams(**{**MEMBER_OPTIM, "member_folds": 3}), seed=0)
    assert res.members["weights"] == {"fused": 1.0, "text": 0.0, "audio": 0.0}
    assert "too few documents" in res.members["reason"]
    np.testing.assert_allclose(res.model.member_weights.numpy(), [1.0, 0.0, 0.0])
    # members without weight are not trained; the prediction is the fused network's own
    assert res.members["trained"] is False
    assert "train_text_cls" not in res.history.columns
    alone = fit(build_config(docs, {**MEMBER_MODEL, "unimodal_members": False}), few, None,
                TrainingParams(**{**MEMBER_OPTIM, "member_folds": 3}), seed=0)
    np.testing.assert_allclose(predict(res.model, docs), predict(alone.model, docs), atol=1e-6)
    with pytest.raises(TrainingError, match="member_folds"):
        TrainingParams(member_folds=1)
    with pytest.raises(TrainingError, match="member_step"):
        TrainingParams(member_step=0.3)
    with pytest.raises(TrainingError, match="linear_rule"):
        TrainingParams(linear_rule="f1")
    with pytest.raises(TrainingError, match="linear_margin"):
        TrainingParams(linear_margin=-0.1)


def test_no_inner_cv_above_member_max_docs_the_fused_network_predicts(docs):
    """More training documents than ``member_max_docs``: no inner cross-validation, the fused
    network alone, trained exactly as without members; at the limit the choice runs."""
    optim = {**MEMBER_OPTIM, "member_folds": 2}
    over = fit(build_config(docs, MEMBER_MODEL), docs, None,
               TrainingParams(**optim, member_max_docs=len(docs) - 1), seed=0)
    assert over.members["weights"] == {"fused": 1.0, "text": 0.0, "audio": 0.0}
    assert over.members["folds"] == 0 and over.members["log_loss"] == {}
    assert f"{len(docs)} training documents, more than member_max_docs" in \
        over.members["reason"]
    assert over.members["trained"] is False
    alone = fit(build_config(docs, {**MEMBER_MODEL, "unimodal_members": False}), docs, None,
                TrainingParams(**optim), seed=0)
    np.testing.assert_allclose(predict(over.model, docs), predict(alone.model, docs), atol=1e-6)
    at = fit(build_config(docs, MEMBER_MODEL), docs, None,
             TrainingParams(**optim, member_max_docs=len(docs)), seed=0)
    assert at.members["reason"] is None and at.members["folds"] == 2
    assert set(at.members["macro_f1"]) == {"fused", "text", "audio"}
    for bad in (1, 2.5, True, "100"):
        with pytest.raises(TrainingError, match="member_max_docs"):
            TrainingParams(member_max_docs=bad)
    assert TrainingParams(member_max_docs=None).member_max_docs is None


def test_principal_init_reads_the_segments_and_never_the_labels(docs):
    """The projections start at the training segments' principal components: the same
    whatever the labels are, and not PyTorch's random start."""
    cfg = build_config(docs, {**MODEL, "principal_init": 0.5})
    shuffled = docs.subset(range(len(docs)))
    shuffled.labels = np.random.default_rng(0).permutation(docs.labels)
    assert not np.array_equal(shuffled.labels, docs.labels)
    runs = [_Run(cfg, d, d.subset([]), tp(), seed=3) for d in (docs, shuffled)]
    random_start = _Run(build_config(docs, {**MODEL, "principal_init": 0.0}), docs,
                        docs.subset([]), tp(), seed=3)
    for m in ("audio", "text"):
        w = [r.model.proj[m].linear.weight.detach() for r in runs]
        torch.testing.assert_close(w[0], w[1], rtol=0, atol=0)
        w0 = random_start.model.proj[m].linear.weight.detach()
        assert not torch.equal(w[0][:4], w0[:4])      # d=8: the first half is principal
        assert torch.equal(w[0][4:], w0[4:])          # the other half is the random start


def test_distillation_targets_are_the_selected_regressions_and_only_train_the_network():
    """The teacher is the logistic regression the linear member would be (modalities and C by
    the repeated inner CV on the training documents), read on those documents; it shapes the
    training loss and nothing of it is kept: the distilled model has the same parameters as
    the plain one and predicts through the network."""
    from hilbert_pipeline.training.trainer import _wide_selection, teacher_probabilities

    docs = _noise_audio_docs()
    proba = teacher_probabilities(docs, ("audio", "text"), 0.5, seed=0)
    clf, subset = _wide_selection(docs, docs.pooled_features(("audio", "text")),
                                  ("audio", "text"), 0.5, 0)
    np.testing.assert_allclose(proba, clf.predict_proba(docs.pooled_features(subset)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    plain_cfg = build_config(docs, {**MODEL, "unimodal_members": False, "distill_weight": 0.0})
    cfg = plain_cfg.replace(distill_weight=0.8)
    run = _Run(cfg, docs, docs.subset([]), tp(epochs=1), seed=0)
    assert set(run.teacher) == {"both"}
    torch.testing.assert_close(run.teacher["both"], torch.as_tensor(proba, dtype=torch.float32))
    # with members, each member's teacher reads its own modality only
    run = _Run(cfg.replace(unimodal_members=True), docs, docs.subset([]), tp(epochs=1), seed=0)
    assert set(run.teacher) == {"both", "text", "audio"}
    for m in ("text", "audio"):
        torch.testing.assert_close(run.teacher[m], torch.as_tensor(
            teacher_probabilities(docs, (m,), 0.5, seed=0), dtype=torch.float32))
    res = fit(cfg, docs, None, tp(epochs=3), seed=0)
    plain = fit(plain_cfg, docs, None, tp(epochs=3), seed=0)
    assert np.isfinite(res.history["train_distill"]).all()
    assert "train_distill" not in plain.history
    assert res.model.state_dict().keys() == plain.model.state_dict().keys()
    assert not np.allclose(predict(res.model, docs), predict(plain.model, docs))
    assert _Run(plain_cfg, docs, docs.subset([]), tp(epochs=1), seed=0).teacher is None


# ------------------------------------------------------------------ the linear member's weight
#: the default form: the linear member's weight chosen by inner CV (without unimodal members,
#: so that the network's out-of-fold predictions are the fused network's own)
AUTO = {**MODEL, "wide_path": True, "wide_weight": "auto", "unimodal_members": False}


def test_the_linear_members_weight_is_chosen_on_out_of_fold_predictions(docs):
    """The weight (the default rule, ``linear_rule: margin``) is 1/2 when the regression's
    out-of-fold macro-F1 is within ``linear_margin`` of the network's, else 0, recomputed here
    by hand from networks and regressions fitted on the inner folds (as are the log-losses
    reported for 0, 1/4, 1/2); the prediction is that average of the final network and the
    final regression."""
    from hilbert_pipeline.folds import stratified_splitter
    from hilbert_pipeline.training.logreg import full_proba
    from hilbert_pipeline.training.trainer import _train, _wide_selection

    cfg = build_config(docs, AUTO)
    optim = TrainingParams(**MEMBER_OPTIM)
    res = fit(cfg, docs, None, optim, seed=3)
    assert res.members["folds"] == 2 and res.members["reason"] is None
    n, mods = len(docs), ("audio", "text")
    net, lin = np.zeros((n, docs.n_classes)), np.zeros((n, docs.n_classes))
    inner = cfg.replace(wide_path=False)
    for a, b in stratified_splitter(2, docs.groups, 3).split(np.zeros(n), docs.labels):
        sub, held = docs.subset(a), docs.subset(b)
        model = _train(inner, sub, sub.subset([]), optim, 3, None, optim.epochs_for(len(sub)))[0]
        net[b] = predict(model, held)
        clf, subset = _wide_selection(sub, sub.pooled_features(mods), mods,
                                      cfg.class_weight_power, 3)
        lin[b] = full_proba(clf[-1], clf.predict_proba(held.pooled_features(subset)),
                            docs.n_classes)

    def log_loss(p):
        return -np.mean(np.log(p[np.arange(n), docs.labels]))

    losses = {w: log_loss((1 - w) * net + w * lin) for w in (0.0, 0.25, 0.5)}
    for w, v in losses.items():
        assert res.members["linear_log_loss"][f"{w:g}"] == pytest.approx(v, rel=1e-6)
    assert res.members["linear_macro_f1"] == pytest.approx(macro_f1(docs.labels, lin))
    assert res.members["network_macro_f1"] == pytest.approx(macro_f1(docs.labels, net))
    close = macro_f1(docs.labels, lin) >= macro_f1(docs.labels, net) - optim.linear_margin
    best = 0.5 if close else 0.0
    assert res.members["linear"] == best and float(res.model.wide_weight) == best
    b = collate(docs, range(n))
    with torch.no_grad():
        wide = torch.softmax(res.model._wide_logits(
            {"audio": b["audio"], "text": b["text"]},
            {"audio": b["audio_mask"], "text": b["text_mask"]}), -1).numpy()
    np.testing.assert_allclose(predict(res.model, docs),
                               (1 - best) * predict(res.model, docs, member=True) + best * wide,
                               atol=1e-5)


def test_the_log_loss_rule_goes_to_the_network_on_ties_and_to_the_floor_at_chance():
    """``rule="log_loss"``: equal evidence keeps the network alone (weight 0); a network at
    chance beside a good regression gives the regression the most the floor allows
    (1 − member_floor); a good network beside a regression at chance keeps it all."""
    from hilbert_pipeline.training.trainer import linear_weight_from_oof

    labels = np.array([0, 0, 1, 1])
    p = np.array([[.8, .2], [.6, .4], [.3, .7], [.4, .6]])
    chance = np.full((4, 2), .5)
    good = np.array([[.9, .1], [.9, .1], [.1, .9], [.1, .9]])
    rule = {"rule": "log_loss"}
    same = linear_weight_from_oof(labels, p, p.copy(), 0.25, 0.5, **rule)
    assert same["linear"] == 0.0 and set(same["linear_log_loss"]) == {"0", "0.25", "0.5"}
    assert linear_weight_from_oof(labels, chance, good, 0.25, 0.5, **rule)["linear"] == 0.5
    assert linear_weight_from_oof(labels, chance, good, 0.25, 0.25, **rule)["linear"] == 0.75
    assert linear_weight_from_oof(labels, good, chance, 0.25, 0.5, **rule)["linear"] == 0.0


def test_the_margin_rule_averages_members_the_evidence_cannot_tell_apart():
    """``rule="margin"`` (the default): the plain average (1 − floor) when the regression's
    out-of-fold macro-F1 is at least the network's minus the margin, whatever the log-loss
    says; the network alone when the regression is further behind."""
    from hilbert_pipeline.training.trainer import linear_weight_from_oof

    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    net = np.tile([.3, .7], (10, 1))
    net[:5] = [.9, .1]  # all right and confident: macro-F1 1, a low log-loss
    lin = net.copy()
    lin[:5] = [.55, .45]  # all right, barely: macro-F1 1, a higher log-loss than the network
    tied = linear_weight_from_oof(labels, net, lin, 0.25, 0.5)
    assert tied["linear"] == 0.5 and tied["linear_macro_f1"] == tied["network_macro_f1"] == 1
    assert linear_weight_from_oof(labels, net, lin, 0.25, 0.5, rule="log_loss")["linear"] == 0
    assert linear_weight_from_oof(labels, net, lin, 0.25, 0.25)["linear"] == 0.75
    worse = lin.copy()
    worse[0] = [.4, .6]  # one document wrong: macro-F1 0.899, 0.101 behind the network
    assert linear_weight_from_oof(labels, net, worse, 0.25, 0.5, margin=0.1)["linear"] == 0
    assert linear_weight_from_oof(labels, net, worse, 0.25, 0.5, margin=0.11)["linear"] == 0.5
    with pytest.raises(ValueError, match="rule"):
        linear_weight_from_oof(labels, net, lin, 0.25, 0.5, rule="f1")


def test_without_inner_cv_the_linear_member_takes_no_weight_and_the_network_predicts(docs):
    """Above ``member_max_docs`` (or with ``member_folds: 0``) no inner cross-validation runs:
    the linear member's weight is 0 and the prediction is the network's without a wide path."""
    alone = fit(build_config(docs, {**AUTO, "wide_path": False}), docs, None,
                TrainingParams(**MEMBER_OPTIM), seed=0)
    for changes in ({"member_max_docs": len(docs) - 1}, {"member_folds": 0}):
        res = fit(build_config(docs, AUTO), docs, None,
                  TrainingParams(**{**MEMBER_OPTIM, **changes}), seed=0)
        assert res.members["linear"] == 0.0 and res.members["reason"]
        assert float(res.model.wide_weight) == 0.0
        np.testing.assert_allclose(predict(res.model, docs), predict(alone.model, docs),
                                   atol=1e-6)


def test_hilberts_one_fit_serves_no_wide_and_with_wide_and_its_weight_mixes_them(docs):
    """The default hilbert (members, linear weight by inner CV): its one fit gives the rows of
    no_wide (the network) and with_wide (the plain average), each equal to the method
    evaluated alone; per fold hilbert = (1 − w) · network + w · regression, the regression
    read off the plain average, with ``w`` the fold's ``weight_linear``."""
    model = {**MODEL, "wide_path": True, "wide_weight": "auto"}
    folds = make_folds(docs, 3, 1, seed=0)
    run = ev.run_evaluation(docs, folds, ["hilbert", "no_wide", "with_wide"], model,
                            MEMBER_OPTIM, seed=0)
    fm, p = run.fold_metrics, run.predictions
    cols = [c for c in p.columns if c.startswith("p_")]
    assert fm["method"].tolist() == ["hilbert", "no_wide", "with_wide"] * 3
    for name in ("no_wide", "with_wide"):
        alone = ev.run_evaluation(docs, folds, [name], model, MEMBER_OPTIM, seed=0)
        np.testing.assert_allclose(p.loc[p.method == name, cols].to_numpy(),
                                   alone.predictions[cols].to_numpy(), atol=1e-6)
        assert ("weight_linear" in alone.fold_metrics) == (name == "with_wide")
    assert (alone.fold_metrics["weight_linear"] == 0.5).all()  # with_wide's own fit
    h = fm[fm.method == "hilbert"]
    assert set(h["weight_linear"]) <= {0.0, 0.25, 0.5}
    assert (fm.loc[fm.method == "with_wide", "weight_linear"] == 0.5).all()
    for (_, row), fold in zip(h.iterrows(), sorted(set(p.fold)), strict=True):
        sel = {m: p[(p.method == m) & (p.fold == fold)][cols].to_numpy()
               for m in ("hilbert", "no_wide", "with_wide")}
        linear = 2 * sel["with_wide"] - sel["no_wide"]
        w = row["weight_linear"]
        np.testing.assert_allclose(sel["hilbert"], (1 - w) * sel["no_wide"] + w * linear,
                                   atol=1e-5)
