"""Quality benchmark: HILBERT with its default parameters against the simple alternatives.

Six corpora with a known source of the label (``hilbert_pipeline.demo.regimes``), each built from
the State of the Union texts and espeak-ng in seconds (nothing downloaded), segmented and embedded
with the project's default settings and encoders (``conf/base``), then evaluated with the
evaluation pipeline's own protocol (repeated stratified k-fold, identical folds for every method):

* ``text``  — label in the words; a random voice per document (audio carries no signal)
* ``audio`` — label in the speaking style (rate/pitch); sentences independent of the label
* ``both``  — label = era x speaking style: neither modality alone separates the classes
* ``demo``  — the demo's task (party), one fixed voice
* ``pairing`` — *which* segments carry which voice: two classes with the same number of war
  sentences and of slow segments, told apart only by their pairing within segments (pooled
  features are blind to it by construction; checked and printed), and a third that differs in
  counts
* ``long``  — 150 segments per document, the label in 6 of them (a few war sentences, or a
  few slow segments, among filler)

Per regime it prints every method's macro-F1 (mean over folds), the network alone (HILBERT itself
by default, or ``no_wide`` when HILBERT is set to a mixture) against the logistic regressions, and HILBERT minus the best alternative (the best method whose role is
``baseline``) with its paired corrected interval. The last line is::

    quality: worst_gap=<x> regime=<name> interaction_gain=<y> pairing_gain=<p>
             long_gain=<l> network_worst_gap=<n> network_regime=<name>

(one line). ``worst_gap``: the smallest (HILBERT − best alternative) mean macro-F1 over the
regimes, and the regime where it happens (target: >= -0.01). ``interaction_gain``: on ``both``,
HILBERT minus the best unimodal method (target: >= 0.15). ``pairing_gain``: on ``pairing``,
HILBERT minus concat_logreg (target: >= 0.30). ``long_gain``: on ``long``, HILBERT minus the best
logistic regression (target: >= 0.10). ``network_worst_gap``: over text, audio, both and demo,
the smallest (network alone − best logistic regression) (target: >= -0.03).

Usage: ``python benchmarks/bench_quality.py [--regimes text,audio,both,demo,pairing,long] [--repeats 3]
[--set model.lambda_dual=0.1 --set optim.epochs=60 ...]``. Corpora, features and the encoder
cache live in ``data/benchmarks/quality`` (a re-run only evaluates). On the 2-core machine
(2026-12-02): building the six corpora and their features the first time took about 6 min; the
evaluation with the default methods 54 min on an Intel Xeon (idle cores), about 110 min on an AMD EPYC
sharing its cores with the test suite (docs/model.md, "Status"; most of it the network's fits,
each with its members' 3-fold inner cross-validation). ``--regimes`` and
``--methods`` run a part (``hilbert`` is always evaluated).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
import hilbert_pipeline  # noqa: F401,E402  (pins the CPU kernels before torch loads)
from hilbert_pipeline.demo.regimes import REGIMES, build_regime_corpus  # noqa: E402
from hilbert_pipeline.documents import build_document_set  # noqa: E402
from hilbert_pipeline.evaluation import evaluate as ev  # noqa: E402
from hilbert_pipeline.evaluation import report as rp  # noqa: E402
from hilbert_pipeline.evaluation import statistics as st  # noqa: E402
from hilbert_pipeline.evaluation.methods import ROLES  # noqa: E402
from hilbert_pipeline.folds import make_folds  # noqa: E402
from hilbert_pipeline.training.params import resolve_training_settings  # noqa: E402

UNIMODAL = ("text_only", "audio_only", "text_logreg", "audio_logreg")
LOGREGS = ("concat_logreg", "text_logreg", "audio_logreg")
DEFAULT_METHODS = ("hilbert", "no_wide", "with_wide", "no_members", "concat_logreg",
                   "text_logreg", "audio_logreg", "bilinear_logreg", "segment_mil")
#: regimes where the network alone is held to the best logistic regression (-0.03)
POOLED_REGIMES = ("text", "audio", "both", "demo")


def load_params() -> dict:
    params: dict = {}
    for f in sorted((ROOT / "conf/base").glob("parameters*.yml")):
        params.update(yaml.safe_load(f.read_text()) or {})
    return params


def apply_sets(training: dict, sets: list[str]) -> dict:
    """``model.lambda_dual=0.1`` / ``optim.epochs=60`` overrides of the training block."""
    training = json.loads(json.dumps(training))
    for item in sets:
        key, _, value = item.partition("=")
        block, _, name = key.partition(".")
        if block not in ("model", "optim") or not name:
            raise SystemExit(f"--set {item}: use model.<field>=<value> or optim.<field>=<value>")
        training.setdefault(block, {})[name] = yaml.safe_load(value)
    return training


def regime_features(regime: str, work: Path, params: dict, seed: int) -> tuple[dict, pd.DataFrame]:
    """Build (or reuse) one regime's corpus, segments and features."""
    from hilbert_pipeline.corpus import SegmentationConfig, load_corpus, segment_corpus
    from hilbert_pipeline.encoders import embed_segments, get_encoder

    out = work / regime
    feat_path = out / "features.pkl"
    corpus = build_regime_corpus(regime, out / "corpus", seed=seed)
    emb = params["embedding"]
    key = json.dumps({"seg": params["segmentation"], "audio": emb["audio_encoder"],
                      "text": emb["text_encoder"], "corpus": (corpus / ".synthesis.json")
                      .read_text()}, sort_keys=True, default=str)
    if feat_path.is_file():
        cached = pickle.loads(feat_path.read_bytes())
        if cached.get("key") == key:
            return cached["features"], cached["documents"]
    seg = params["segmentation"]
    validated = load_corpus(corpus, report_path=out / "validation.json", progress=False)
    segments, documents, _ = segment_corpus(validated.documents,
                                            SegmentationConfig.from_params(seg), progress=False)
    audio = get_encoder(emb["audio_encoder"]["name"], **(emb["audio_encoder"].get("options") or {}))
    text = get_encoder(emb["text_encoder"]["name"], **(emb["text_encoder"].get("options") or {}))
    features, _ = embed_segments(segments, audio, text, work / "cache", progress=True,
                                 source=f"{regime} segments")
    out.mkdir(parents=True, exist_ok=True)
    feat_path.write_bytes(pickle.dumps({"key": key, "features": features,
                                        "documents": documents}))
    return features, documents


def evaluate_regime(features: dict, documents: pd.DataFrame, training: dict, methods: list[str],
                    n_splits: int, n_repeats: int, seed: int, n_jobs: int) -> dict:
    docs, _ = build_document_set(features, documents, min_docs_per_class=n_splits)
    folds = make_folds(docs, n_splits, n_repeats, seed)
    settings = resolve_training_settings(training)
    tp = {**settings.training_params, "progress": False}
    run = ev.run_evaluation(docs, folds, methods, settings.model_params, tp, seed,
                            progress=True, n_jobs=n_jobs)
    summary = rp.summarize(run.fold_metrics, ci="corrected_t")
    paired = st.paired_comparison(run.fold_metrics, "hilbert", "macro_f1")
    verdict = st.verdict(paired, summary, ROLES)
    counts = dict(zip(docs.label_names, docs.class_counts().tolist(), strict=True))
    return {"summary": summary, "paired": paired, "verdict": verdict, "classes": counts,
            "fold_metrics": run.fold_metrics, "predictions": run.predictions}


def pairwise_accuracy(predictions: pd.DataFrame, method: str, a: str, b: str) -> float:
    """Accuracy of ``method`` at telling class ``a`` from class ``b`` on the documents of those
    two classes (the larger of its two probabilities decides; chance 0.5)."""
    p = predictions[(predictions["method"] == method) & predictions["y_true"].isin([a, b])]
    guess = np.where(p[f"p_{a}"] >= p[f"p_{b}"], a, b)
    return float((guess == p["y_true"].to_numpy()).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--repeats", type=int, default=None,
                    help="repeats of the k-fold (default: evaluation.n_repeats)")
    ap.add_argument("--folds", type=int, default=None, help="k (default: evaluation.n_splits)")
    ap.add_argument("--n-jobs", type=int, default=None, help="default: evaluation.n_jobs")
    ap.add_argument("--seed", type=int, default=None, help="fold seed (default: evaluation.seed)")
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--work-dir", default=str(ROOT / "data/benchmarks/quality"))
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.FIELD=VALUE",
                    help="override training.model / training.optim, e.g. model.lambda_dual=0.1")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--audio-encoder", default=None,
                    help="audio encoder name (default: embedding.audio_encoder of the parameters)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    if args.audio_encoder:
        params["embedding"]["audio_encoder"] = {"name": args.audio_encoder, "options": {}}
    ev_params = params["evaluation"]
    n_splits = args.folds or int(ev_params["n_splits"])
    n_repeats = args.repeats or int(ev_params["n_repeats"])
    seed = int(ev_params["seed"]) if args.seed is None else args.seed
    n_jobs = args.n_jobs or int(ev_params.get("n_jobs", 1))
    training = apply_sets(params["training"], args.set)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "hilbert" not in methods:
        methods.insert(0, "hilbert")
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    work = Path(args.work_dir)
    print(f"protocol: {n_repeats} x {n_splits}-fold, seed {seed}; overrides: {args.set or 'none'}; "
          f"encoders: {params['embedding']['audio_encoder']['name']} + "
          f"{params['embedding']['text_encoder']['name']}")
    gaps, results, interaction = {}, {}, None
    net_gaps: dict[str, float] = {}
    pairing_gain = long_gain = None
    for regime in regimes:
        t0 = time.perf_counter()
        features, documents = regime_features(regime, work, params, args.corpus_seed)
        res = evaluate_regime(features, documents, training, methods, n_splits, n_repeats,
                              seed, n_jobs)
        summary, v = res["summary"], res["verdict"]
        means = {m: summary[m]["macro_f1"]["mean"] for m in summary}
        print(f"\n== regime {regime}: {sum(res['classes'].values())} documents, classes "
              f"{res['classes']} ({time.perf_counter() - t0:.0f} s)")
        for m, x in sorted(means.items(), key=lambda kv: -kv[1]):
            sd = summary[m]["macro_f1"]["std"]
            print(f"  {m:<14} macro-F1 {x:.3f} ± {sd:.3f}")
        if "mean_diff" in v:
            gaps[regime] = v["mean_diff"]
            print(f"  hilbert - best alternative ({v['best_alternative']}): "
                  f"{v['mean_diff']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]")
        print(f"  {v['sentence']}")
        net = rp.network_method(res["fold_metrics"], "hilbert")
        lr_means = [means[m] for m in LOGREGS if m in means]
        best_lr = max(lr_means) if lr_means else None
        if net is not None and best_lr is not None:
            print(f"  network alone ({net}) {means[net]:.3f}: "
                  f"{means[net] - best_lr:+.3f} vs the best logistic regression")
            if regime in POOLED_REGIMES:
                net_gaps[regime] = means[net] - best_lr
        if regime == "pairing":
            for m in ("concat_logreg", "hilbert", "with_wide", "no_wide", "segment_mil"):
                if m in means:
                    acc = pairwise_accuracy(res["predictions"], m, "paired", "crossed")
                    print(f"  {m}: paired vs crossed accuracy {acc:.3f} (chance 0.5)")
            pairing_gain = means["hilbert"] - means.get("concat_logreg", float("nan"))
        if regime == "long":
            long_gain = None if best_lr is None else means["hilbert"] - best_lr
        if regime == "both":
            uni = [means[m] for m in UNIMODAL if m in means]
            if uni:
                interaction = means["hilbert"] - max(uni)
                print(f"  hilbert - best unimodal: {interaction:+.3f}; hilbert - concat_logreg: "
                      f"{means['hilbert'] - means.get('concat_logreg', float('nan')):+.3f}")
        results[regime] = {"means": means, "verdict": v, "classes": res["classes"],
                           "paired": res["paired"],
                           # per fold: scores, chosen C, member weights (what a fold chose)
                           "fold_metrics": res["fold_metrics"].to_dict(orient="records")}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    worst = min(gaps, key=lambda r: gaps[r]) if gaps else None

    def fmt(x: float | None) -> str:
        return "nan" if x is None else f"{x:.3f}"

    net_worst = min(net_gaps, key=lambda r: net_gaps[r]) if net_gaps else None
    print(f"\nquality: worst_gap={fmt(gaps.get(worst))} regime={worst} "
          f"interaction_gain={fmt(interaction)} pairing_gain={fmt(pairing_gain)} "
          f"long_gain={fmt(long_gain)} "
          f"network_worst_gap={fmt(net_gaps.get(net_worst) if net_worst else None)} "
          f"network_regime={net_worst}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
