"""The ``inference`` pipeline in memory on a tiny real corpus (espeak-ng speech, the real default
encoders): train on 12 documents, then predict unseen ones, among them one without transcript
text and one without audible speech."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from memory_runner import run_in_memory
from tiny_topics import TOPICS

from hilbert_pipeline.demo import synthesize_corpus
from hilbert_pipeline.documents import build_document_set
from hilbert_pipeline.evaluation.report import FORMS
from hilbert_pipeline.inference.predict import InferenceError
from hilbert_pipeline.pipelines.embedding import create_pipeline as embedding
from hilbert_pipeline.pipelines.inference import create_pipeline as inference
from hilbert_pipeline.pipelines.segmentation import create_pipeline as segmentation
from hilbert_pipeline.pipelines.training import create_pipeline as training
from hilbert_pipeline.training.checkpoint import load_checkpoint, save_payload
from hilbert_pipeline.training.trainer import predict

pytestmark = pytest.mark.slow

def _documents(prefix: str, per_class: int, shift: int = 0) -> list[dict]:
    docs = []
    for label, sentences in TOPICS.items():
        for j in range(per_class):
            k = j + shift
            docs.append({"doc_id": f"{prefix}{label}_{j}", "label": label,
                         "sentences": sentences[k % 3:] + sentences[:k % 3][: 1 + k % 2]})
    return docs


def _params(tmp: Path, model_path: Path) -> dict:
    return {
        "segmentation": {"progress": False, "min_docs_per_label": 2,
                         "report_path": str(tmp / "corpus_validation.json")},
        "embedding": {"progress": False, "device": "cpu", "torch_threads": 1,
                      "cache_dir": str(tmp / "cache")},
        "training": {"progress": False, "device": "cpu",
                     "model": {"d": 16, "n_heads": 2, "n_experts": 2},
                     "optim": {"epochs": 3, "batch_size": 4, "num_threads": 1}},
        "inference": {"model_path": str(model_path), "progress": False, "top_k": 2,
                      "report_path": str(tmp / "inference_validation.json")},
    }


def _rewrite_manifest(corpus: Path, change) -> None:
    path = corpus / "manifest.csv"
    rows = list(csv.DictReader(path.open()))
    rows = change(rows)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, espeak):
    tmp = tmp_path_factory.mktemp("inference")
    model_path = tmp / "model.pt"
    params = _params(tmp, model_path)
    train_corpus = synthesize_corpus(tmp / "train", _documents("", 4), seed=0)
    out = run_in_memory(segmentation() + embedding() + training(),
                        params={**params, "corpus": str(train_corpus)})
    save_payload(model_path, out["hilbert_model"])

    # unseen documents: two ordinary, one whose cues carry no text, one with silent audio
    new = synthesize_corpus(tmp / "new_src", _documents("new_", 1, shift=1)
                            + [{"doc_id": "silent", "label": "defense",
                                "sentences": TOPICS["defense"][:2]},
                               {"doc_id": "wordless", "label": "economy",
                                "sentences": TOPICS["economy"][:2]}], seed=1)
    corpus = tmp / "new"
    shutil.copytree(new, corpus)
    tr = json.loads((corpus / "transcripts/wordless.json").read_text())
    for cue in tr["segments"]:
        cue["text"] = ""
    (corpus / "transcripts/wordless.json").write_text(json.dumps(tr))
    wav, rate = sf.read(corpus / "audio/silent.flac")
    sf.write(corpus / "audio/silent.flac", np.zeros_like(wav), rate)
    _rewrite_manifest(corpus, lambda rows: [
        {**r, "label": "" if r["doc_id"] == "new_science_0" else r["label"]} for r in rows])
    return {"tmp": tmp, "params": params, "model_path": model_path, "train": train_corpus,
            "new": corpus, "train_out": out}


def _infer(trained, corpus: Path, **changes) -> dict:
    params = {**trained["params"], "corpus": str(corpus)}
    for key, value in changes.items():
        params[key] = {**params.get(key, {}), **value}
    return run_in_memory(inference(), params=params)


def test_unseen_documents_are_predicted_flagged_and_explained(trained):
    out = _infer(trained, trained["new"])
    pred = out["predictions"].set_index("doc_id")
    assert len(pred) == 5
    ck = load_checkpoint(trained["model_path"])
    proba = pred[[f"p_{c}" for c in ck.label_names]].to_numpy(dtype=float)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (pred["predicted_label"] == [ck.label_names[k] for k in proba.argmax(axis=1)]).all()
    assert pred.loc["wordless", "modalities"] == "audio only"
    assert pred.loc["silent", "modalities"] == "text only"
    assert pred.loc["new_economy_0", "modalities"] == "audio+text"
    assert not pred["in_training"].any()

    # explanations: real segments of their documents, with their own time spans and text
    ex = out["explanations"]
    segs = out["inference_segments"].set_index(["doc_id", "seg_idx"])
    assert set(ex["doc_id"]) == set(pred.index)
    for _, r in ex.iterrows():
        s = segs.loc[(r["doc_id"], r["seg_idx"])]
        assert (r["start"], r["end"]) == (s["start"], s["end"])
        assert (r["text"] if isinstance(r["text"], str) else "") == (s["text"] or "")
    assert (ex.groupby("doc_id").size() <= 2).all()

    # labelled documents are scored as a held-out test; the unlabelled one is predicted only
    m = out["inference_metrics"]
    assert m["n_documents"] == 5 and m["n_labelled"] == 4 and m["n_scored"] == 4
    assert m["held_out"] is True and 0.0 <= m["metrics"]["macro_f1"] <= 1.0
    assert np.asarray(m["confusion"]["matrix"]).sum() == 4

    html = out["inference_report"]
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 5
    for ref in ("<script", "<link", "src=", "url(", "@import", 'href="http'):
        assert ref not in html
    assert 'href="#doc-wordless"' in html and 'id="doc-wordless"' in html
    # the report says what the model is
    form = ck.model.config.prediction_form
    assert m["model_form"] == form == "mixture"
    assert f"The model's prediction is {FORMS[form]}" in html
    # the linear member's share, as trained, in the metrics and the report
    lw = ck.extra["members"]["linear"]
    assert m["linear_weight"] == lw == float(ck.model.wide_weight) and 0 <= lw <= 0.5
    assert f"takes {lw:.2f} of the final average and the network {1 - lw:.2f}" in html
    # the default network has unimodal members: their weights are reported
    assert ck.model.config.has_members
    w = m["member_weights"]
    assert set(w) == {"fused", "text", "audio"} and sum(w.values()) == pytest.approx(1.0)
    assert w["fused"] >= 0.5 and "unimodal members" in html
    alone = w["text"] == w["audio"] == 0
    assert ("The fused network predicts alone" in html) == alone
    assert m["member_reason"] == ck.extra["members"]["reason"]
    assert ("It averages the fused network and its unimodal members" in html) == (not alone)


def test_training_documents_get_the_in_process_predictions(trained):
    out = _infer(trained, trained["train"])
    ck = load_checkpoint(trained["model_path"])
    feats, documents = trained["train_out"]["segment_features"], trained["train_out"][
        "documents"]
    docs, _ = build_document_set(feats, documents, label_map=ck.extra["contract"]["label_map"])
    expected = predict(ck.model, docs)
    pred = out["predictions"].set_index("doc_id").loc[docs.doc_ids]
    got = pred[[f"p_{c}" for c in ck.label_names]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert pred["in_training"].all()
    assert out["inference_metrics"]["held_out"] is False


def test_an_unlabelled_manifest_without_label_column_works(trained, tmp_path):
    corpus = tmp_path / "unlabelled"
    shutil.copytree(trained["new"], corpus)
    _rewrite_manifest(corpus, lambda rows: [{k: v for k, v in r.items() if k != "label"}
                                            for r in rows])
    out = _infer(trained, corpus)
    assert len(out["predictions"]) == 5 and out["predictions"]["label"].isna().all()
    assert out["inference_metrics"]["metrics"] is None


def test_a_document_excluded_at_validation_is_listed_with_its_reason(trained, tmp_path):
    """exclude_invalid: a document whose transcript is missing is left out of the prediction,
    and still has its row in predictions.csv and the report, the reason in ``note``."""
    corpus = tmp_path / "with_bad"
    shutil.copytree(trained["new"], corpus)
    (corpus / "transcripts/new_defense_0.json").unlink()
    out = _infer(trained, corpus, segmentation={"exclude_invalid": True})
    pred = out["predictions"].set_index("doc_id")
    assert len(pred) == 5  # every manifest row
    bad = pred.loc["new_defense_0"]
    assert pd.isna(bad["predicted_label"]) and "excluded at validation" in bad["note"]
    assert "transcript" in bad["note"]
    assert pred.drop(index="new_defense_0")["predicted_label"].notna().all()
    html = out["inference_report"]
    assert "5 document(s)" in html and "excluded at validation" in html


def test_a_mismatched_encoder_is_refused_before_any_work(trained):
    with pytest.raises(InferenceError) as err:
        _infer(trained, trained["new"],
               embedding={"audio_encoder": {"name": "egemaps", "options": {}}})
    msg = str(err.value)
    assert "resemblyzer" in msg and "egemaps" in msg and str(trained["model_path"]) in msg
    with pytest.raises(InferenceError, match="segmentation.max_duration"):
        _infer(trained, trained["new"], segmentation={"max_duration": 5.0})


def test_the_training_corpus_tables_are_not_touched(trained):
    """Inference writes its own datasets: the training pipeline's are other names."""
    outputs = inference().outputs()
    assert not outputs & {"segments", "documents", "segment_features", "hilbert_model"}
    assert {"predictions", "explanations", "inference_metrics", "inference_report"} <= outputs
    assert pd.api.types.is_bool_dtype(pd.Series([True]))
