"""``inference.predict``: the training contract and its checks, the inference document set,
segment relevance, explanations and external metrics (tiny synthetic features, real models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic import synthetic_features

from hilbert_pipeline.documents import build_document_set, collate
from hilbert_pipeline.inference.predict import (
    InferenceError,
    check_feature_meta,
    check_parameters,
    explanations_table,
    external_metrics,
    inference_set,
    predict_corpus,
    predictions_table,
    ranking,
    segment_relevance,
    segment_timeline,
    training_contract,
)
from hilbert_pipeline.model import HilbertModel
from hilbert_pipeline.training.params import build_config
from hilbert_pipeline.training.trainer import TrainingParams, eval_batches, fit, predict, softmax

torch.set_num_threads(1)

RESEMBLYZER = {"name": "resemblyzer", "dim": 256, "version": "resemblyzer==0.1.4",
               "options": {"rate": 1.3}}
EGEMAPS = {"name": "egemaps", "dim": 88, "version": "opensmile==2.5", "options": {}}
MINILM = {"name": "minilm", "dim": 384, "version": "gt==0.1.0", "options": {}}
SEGMENTATION = {"min_duration": 1.0, "max_duration": 15.0, "max_merge_gap": 1.5,
                "max_segments": 1024, "cap_strategy": "stride", "seed": 0, "progress": False}


def _extra(label_map=None):
    return {"contract": training_contract(SEGMENTATION, label_map, 1)}


def test_contract_records_the_cutting_rules_and_the_class_definition():
    c = training_contract(SEGMENTATION, {"Whig": "other"}, 3)
    assert c["segmentation"]["max_segments"] == 1024 and "progress" not in c["segmentation"]
    assert c["label_map"] == {"Whig": "other"} and c["min_class_size"] == 3


def test_matching_parameters_pass():
    meta = {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}
    # a model folder elsewhere with the same weights (same version) is the same encoder
    moved = {"audio_encoder": RESEMBLYZER,
             "text_encoder": {**MINILM, "options": {"path": "/elsewhere"}}}
    check_parameters(_extra({"a": "b"}), meta, SEGMENTATION, {"a": "b"}, moved, "m.pt")


def test_a_different_encoder_is_refused_naming_both_sides():
    meta = {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}
    now = {"audio_encoder": EGEMAPS, "text_encoder": MINILM}
    with pytest.raises(InferenceError) as err:
        check_parameters(_extra(), meta, SEGMENTATION, None, now, "model.pt")
    msg = str(err.value)
    assert "model.pt" in msg and "audio_encoder" in msg and "text_encoder" not in msg
    assert "trained with resemblyzer" in msg and "now give egemaps" in msg
    # a modality switched off is a mismatch as well
    with pytest.raises(InferenceError, match="no encoder"):
        check_parameters(_extra(), meta, SEGMENTATION, None,
                         {"audio_encoder": RESEMBLYZER, "text_encoder": None}, "model.pt")
    # and so are changed options or weights of the same encoder
    with pytest.raises(InferenceError, match="rate=1.5"):
        check_parameters(_extra(), meta, SEGMENTATION, None,
                         {"audio_encoder": {**RESEMBLYZER, "options": {"rate": 1.5}},
                          "text_encoder": MINILM}, "model.pt")


def test_segmentation_and_class_definition_mismatches_are_all_listed():
    meta = {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}
    with pytest.raises(InferenceError) as err:
        check_parameters(_extra({"Whig": "other"}), meta, {**SEGMENTATION, "max_segments": 64},
                         {"Whig": "Republican"}, meta, "model.pt")
    msg = str(err.value)
    assert "segmentation.max_segments: the model was trained with 1024" in msg
    assert "now say 64" in msg
    assert "label_map" in msg and "'Whig': 'other'" in msg and "'Whig': 'Republican'" in msg


def test_a_checkpoint_without_contract_asks_for_retraining():
    with pytest.raises(InferenceError, match="retrain"):
        check_parameters({}, {}, SEGMENTATION, None, {}, "old.pt")


def test_feature_meta_check():
    meta = {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}
    check_feature_meta(meta, dict(meta), "m.pt")
    with pytest.raises(InferenceError, match="egemaps"):
        check_feature_meta(meta, {"audio_encoder": EGEMAPS, "text_encoder": MINILM}, "m.pt")


def _trained(wide_path: bool = True, **model):
    sf, documents = synthetic_features([8, 6, 5], n_segments=(3, 6), audio_dim=6, text_dim=5,
                                       signal=1.5, seed=1)
    docs, _ = build_document_set(sf, documents)
    cfg = build_config(docs, {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2,
                              "wide_path": wide_path, "modality_dropout": 0.0, **model})
    tp = TrainingParams(epochs=2, batch_size=8, min_epochs=1, progress=False, device="cpu",
                        num_threads=1)
    return sf, documents, docs, fit(cfg, docs, None, tp, seed=0).model


def test_inference_set_keeps_every_document_and_marks_unknown_labels():
    sf, documents, docs, _ = _trained()
    documents = documents.copy()
    documents.loc[0, "label"] = None  # unlabelled
    documents.loc[1, "label"] = "c9"  # a class the model does not know
    documents.loc[2, "label"] = "x"  # mapped to c1 by the class definition
    iset = inference_set(sf, documents, docs.label_names, {"x": "c1"})
    assert iset.docs.doc_ids == documents["doc_id"].tolist()
    assert iset.docs.labels[0] == -1 and iset.labels[0] is None
    assert iset.docs.labels[1] == -1 and iset.labels[1] == "c9"
    assert iset.docs.labels[2] == docs.label_names.index("c1")
    # segments in seg_idx order, aligned with the feature rows
    i = 3
    rows = sf["index"].reset_index(drop=True)
    rows = rows[rows["doc_id"] == documents.loc[i, "doc_id"]].sort_values("seg_idx")
    assert iset.segments[i].tolist() == rows["seg_idx"].tolist()
    np.testing.assert_array_equal(iset.docs.text[i], np.asarray(sf["text"])[rows.index])


def test_a_document_without_any_feature_is_listed_not_dropped():
    sf, documents, docs, model = _trained()
    sf = dict(sf)
    first = documents.loc[0, "doc_id"]
    rows = (sf["index"]["doc_id"] == first).to_numpy()
    sf["audio_mask"] = np.where(rows, False, sf["audio_mask"])
    sf["text_mask"] = np.where(rows, False, sf["text_mask"])
    iset = inference_set(sf, documents, docs.label_names, None)
    assert iset.unusable == [first] and first not in iset.docs.doc_ids
    pred = predict_corpus(model, iset.docs)
    table = predictions_table(iset, pred)
    assert len(table) == len(documents)
    row = table.set_index("doc_id").loc[first]
    assert pd.isna(row["predicted_label"]) and "not predicted" in row["note"]
    metrics = external_metrics(iset, pred)
    assert {"doc_id": first, "reason": "no usable audio or text"} in metrics["not_scored"]


def test_predictions_match_the_model_and_flag_missing_modalities():
    sf, documents, docs, model = _trained()
    sf = dict(sf)
    idx = sf["index"]["doc_id"].to_numpy()
    no_text, no_audio = documents.loc[0, "doc_id"], documents.loc[1, "doc_id"]
    sf["text_mask"] = np.where(idx == no_text, False, sf["text_mask"])
    sf["audio_mask"] = np.where(idx == no_audio, False, sf["audio_mask"])
    iset = inference_set(sf, documents, docs.label_names, None)
    pred = predict_corpus(model, iset.docs)
    np.testing.assert_allclose(pred.proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(pred.proba, predict(model, iset.docs), atol=1e-7)
    table = predictions_table(iset, pred, training_ids=[documents.loc[2, "doc_id"]]).set_index(
        "doc_id")
    assert table.loc[no_text, "modalities"] == "audio only"
    assert table.loc[no_audio, "modalities"] == "text only"
    assert not table.loc[no_text, "has_text"] and table.loc[no_text, "has_audio"]
    # reliance is defined only where both modalities exist
    assert np.isnan(table.loc[no_text, "reliance_audio"])
    assert np.isnan(table.loc[no_audio, "reliance_text"])
    both = documents.loc[3, "doc_id"]
    assert np.isfinite(table.loc[both, ["reliance_audio", "reliance_text"]].astype(float)).all()
    assert table["in_training"].sum() == 1 and table.loc[documents.loc[2, "doc_id"],
                                                         "in_training"]
    # reliance = p(pred) - p(pred | modality masked), recomputed by hand for one document
    i = iset.docs.doc_ids.index(both)
    b = collate(iset.docs, [i])
    with torch.no_grad():
        p = torch.softmax(model(b["audio"], b["text"], b["audio_mask"] & False,
                                b["text_mask"]).logits, -1)[0].numpy()
    k = int(pred.proba[i].argmax())
    assert table.loc[both, "reliance_audio"] == pytest.approx(pred.proba[i, k] - p[k], abs=1e-6)


def test_a_model_trained_on_crops_predicts_by_windows_as_in_the_evaluation():
    sf, documents, docs, model = _trained(wide_path=False, crop_segments=3)
    iset = inference_set(sf, documents, docs.label_names, None)
    pred = predict_corpus(model, iset.docs)
    np.testing.assert_allclose(pred.proba, predict(model, iset.docs), atol=1e-7)
    whole = np.concatenate([softmax(out) for _, _, out in eval_batches(model, iset.docs, 64)])
    assert not np.allclose(pred.proba, whole, atol=1e-4)  # windows, not whole documents
    assert len(pred.attention) == len(iset.docs)


def test_relevance_decomposes_the_wide_path_exactly():
    """The ``wide`` form: the model is its linear member, and the segment relevances of a
    document sum to its evidence minus an average document's."""
    sf, documents, docs, _ = _trained()
    cfg = build_config(docs, {"d": 8, "n_heads": 2, "pool_hops": 2, "n_experts": 2,
                              "wide_path": True, "wide_combine": "wide",
                              "modality_dropout": 0.0})
    model = HilbertModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.wide.weight.copy_(torch.randn(model.wide.weight.shape, generator=g))
        model.wide.bias.copy_(torch.randn(model.wide.bias.shape, generator=g))
        model.set_pooled_stats(torch.randn(model.pooled_mean.shape, generator=g),
                               torch.rand(model.pooled_std.shape, generator=g) + 0.5)
    classes = predict(model, docs).argmax(axis=1)
    # no network in this form: inference reports no gate weights of its untrained experts
    iset = inference_set(sf, documents, docs.label_names, None)
    pred = predict_corpus(model, iset.docs)
    assert pred.gate.shape == (len(iset.docs), 0)
    assert not [c for c in predictions_table(iset, pred).columns if c.startswith("gate_")]
    rel_a, rel_t = segment_relevance(model, docs, classes)
    bias = model.wide.bias.detach().numpy()
    for i in range(len(docs)):
        b = collate(docs, [i])
        with torch.no_grad():
            logits = model(b["audio"], b["text"], b["audio_mask"], b["text_mask"]).logits[0]
        c = int(classes[i])
        evidence = float(logits[c] - logits.mean())
        at_mean = float(bias[c] - bias.mean())
        assert rel_a[i].sum() + rel_t[i].sum() == pytest.approx(evidence - at_mean, abs=1e-4)
        assert rel_a[i].shape == (docs.audio[i].shape[0],)


def test_ranking_uses_attention_unless_it_is_flat():
    order, by = ranking(np.array([0.2, 0.5, 0.3]), np.array([3.0, 1.0, 2.0]))
    assert by == "attention" and order.tolist() == [1, 2, 0]
    order, by = ranking(np.full(3, 1 / 3), np.array([3.0, -1.0, 2.0]))
    assert by == "relevance" and order.tolist() == [0, 2, 1]


def test_explanations_point_at_real_segments():
    sf, documents, docs, model = _trained()
    iset = inference_set(sf, documents, docs.label_names, None)
    pred = predict_corpus(model, iset.docs)
    for w in pred.attention:
        assert w.sum() == pytest.approx(1.0, abs=1e-5)
    index = sf["index"]
    segments = index.assign(start=index["seg_idx"] * 2.0, end=index["seg_idx"] * 2.0 + 1.5,
                            text=[f"{d}/{s}" for d, s in zip(index["doc_id"], index["seg_idx"],
                                                             strict=True)])
    ex = explanations_table(iset, pred, segments, top_k=2)
    assert (ex.groupby("doc_id").size() == 2).all()
    assert (ex["text"] == ex["doc_id"] + "/" + ex["seg_idx"].astype(str)).all()
    assert (ex["start"] == ex["seg_idx"] * 2.0).all()
    assert np.allclose(ex["relevance"], ex["relevance_audio"] + ex["relevance_text"])
    # a segment missing from the table: no time span, no text, still listed
    partial = segments[~((segments["doc_id"] == ex["doc_id"].iloc[0])
                         & (segments["seg_idx"] == ex["seg_idx"].iloc[0]))]
    gap = explanations_table(iset, pred, partial, top_k=2).iloc[0]
    assert np.isnan(gap["start"]) and pd.isna(gap["text"]) and gap["seg_idx"] == ex["seg_idx"].iloc[0]
    # the report's timeline: every segment of every document, in order, with its weight
    timeline = segment_timeline(iset, pred, segments)
    assert list(timeline) == list(iset.docs.doc_ids)
    for i, t in enumerate(timeline.values()):
        assert t["seg_idx"].tolist() == list(iset.segments[i])
        assert (t["start"] == t["seg_idx"] * 2.0).all() and (t["end"] > t["start"]).all()
        assert np.allclose(t["weight"], pred.attention[i])


def test_external_metrics_score_known_labels_and_say_what_was_seen_in_training():
    sf, documents, docs, model = _trained()
    documents = documents.copy()
    documents.loc[0, "label"] = "c9"
    iset = inference_set(sf, documents, docs.label_names, None)
    pred = predict_corpus(model, iset.docs)
    m = external_metrics(iset, pred, training_ids=documents["doc_id"].tolist()[:3])
    assert m["n_labelled"] == len(documents) and m["n_scored"] == len(documents) - 1
    assert m["not_scored"][0]["doc_id"] == documents.loc[0, "doc_id"]
    assert m["n_in_training"] == 2 and m["held_out"] is False
    assert set(m["metrics"]) >= {"macro_f1", "balanced_accuracy", "auc_ovr_macro"}
    assert np.asarray(m["confusion"]["matrix"]).sum() == m["n_scored"]
    unlabelled = documents.drop(columns=["label"])
    m = external_metrics(inference_set(sf, unlabelled, docs.label_names, None), pred)
    assert m["metrics"] is None and m["n_labelled"] == 0


def test_document_embeddings_are_what_the_model_predicts_from():
    """z_joint for a trained deep model; for the wide form (deep branches never trained) the
    standardised pooled features of the modalities the wide path reads."""
    from hilbert_pipeline.inference.predict import document_embeddings

    _, _, docs, model = _trained()
    z, what = document_embeddings(model, docs)
    assert what == "z_joint" and z.shape == (len(docs), model.config.d)
    b = collate(docs, range(len(docs)))
    with torch.no_grad():
        expect = model(b["audio"], b["text"], b["audio_mask"], b["text_mask"]).z_joint
    np.testing.assert_allclose(z, expect.numpy(), atol=1e-6)

    wide = HilbertModel(model.config.replace(wide_combine="wide")).eval()
    # the wide form has no members and no mixture weight (nothing of the network predicts):
    # they stay behind
    wide.load_state_dict({k: v for k, v in model.state_dict().items()
                          if not k.startswith("member") and k != "wide_weight"})
    with torch.no_grad():
        wide.wide.weight.zero_()
        wide.wide.weight[:, docs.audio_dim:] = 1.0  # the wide path reads the text only
    z, what = document_embeddings(wide, docs)
    assert what.startswith("standardised pooled features")
    x = docs.pooled_features(("text",))
    np.testing.assert_allclose(z, (x - x.mean(0)) / x.std(0), atol=1e-5)


def test_a_different_speaker_selection_is_refused():
    """A model trained on the participant's turns is not applied to whole interviews."""
    meta = {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}
    participant = {**SEGMENTATION, "speakers": {"keep": ["Participant"], "context": False}}
    extra = {"contract": training_contract(participant, None, 1)}
    check_parameters(extra, meta, participant, None, meta, "model.pt")  # same selection: fine
    with pytest.raises(InferenceError) as err:
        check_parameters(extra, meta, SEGMENTATION, None, meta, "model.pt")
    assert "segmentation.speakers: the model was trained with {'keep': ['Participant']" in \
        str(err.value)


def test_a_model_trained_with_whisper_refuses_resemblyzer():
    from hilbert_pipeline.encoders import get_encoder

    whisper = get_encoder("whisper", device="cpu").describe()
    trained = {"audio_encoder": whisper, "text_encoder": MINILM}
    check_parameters(_extra(), trained, SEGMENTATION, None, trained, "model.pt")
    with pytest.raises(InferenceError) as err:
        check_parameters(_extra(), trained, SEGMENTATION, None,
                         {"audio_encoder": RESEMBLYZER, "text_encoder": MINILM}, "model.pt")
    assert "the model was trained with whisper" in str(err.value)
    assert "now give resemblyzer" in str(err.value)
