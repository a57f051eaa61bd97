"""Member-weight rules, replayed: how hilbert would score on the quality benchmark's folds if its
members (fused network, text member, audio member, and the linear member: the pooled logistic
regression) were weighted by another rule, without training anything twice.

For every fold of a ``bench_quality.py`` regime, the default hilbert fit runs once (its members
all trained) and this records what every rule needs: the members' out-of-fold probabilities on
the training documents (the inner cross-validation that chooses the weights, with the linear
member fitted the way the network fits it on the same inner folds) and each member's
probabilities on the fold's test documents. Each rule then chooses weights from the out-of-fold
evidence alone, and its test macro-F1 is the average of the members' test probabilities with
those weights. The ``current`` rule (the default: the network's members weighted, then the
linear member's share) reproduces hilbert's benchmark score and ``network`` its ``no_wide`` row,
to the last digit (a check that the replay is exact). ``fused`` is the fused network of these
fits alone; it is not bench_quality's ``no_members`` row, a fit of its own that keeps the
linear member.

    python benchmarks/bench_member_rules.py [--regimes demo,text,both,pairing] [--seed N]

The records are cached under ``data/benchmarks/member_rules/`` (one pickle per regime and fold
seed: 15 to 20 minutes per regime on 2 cores). Last line:
``member_rules: <rule>=<mean over regimes of the difference from current> ...``.
It is a tool for choosing the next default, not a test: the rules here were compared on these
folds, so a rule chosen from this table must be confirmed on other fold seeds.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))
from bench_quality import load_params, regime_features  # noqa: E402

import hilbert_pipeline  # noqa: E402,F401  (pins the CPU kernels before torch loads)
from hilbert_pipeline.documents import build_document_set  # noqa: E402
from hilbert_pipeline.evaluation import evaluate as ev  # noqa: E402
from hilbert_pipeline.evaluation.methods import resolve_methods  # noqa: E402
from hilbert_pipeline.folds import make_folds  # noqa: E402
from hilbert_pipeline.metrics import macro_f1  # noqa: E402
from hilbert_pipeline.training.params import resolve_training_settings  # noqa: E402
from hilbert_pipeline.training.trainer import (  # noqa: E402
    MEMBERS,
    _log_loss,
    linear_weight_from_oof,
    linear_weight_grid,
    weights_from_oof,
)

#: the members a rule may weigh: the network's three and the linear member
M4 = (*MEMBERS, "linear")


def _record_fold(spec, train, test, model_params, training_params, seed, member_folds):
    """One fold in a worker: the default hilbert fit with every member trained, recording the
    out-of-fold and test probabilities of each member."""
    from hilbert_pipeline.evaluation import methods
    from hilbert_pipeline.folds import stratified_splitter
    from hilbert_pipeline.training import trainer

    rec: dict = {}
    choose = trainer.weights_from_oof

    def recording(labels, oof, step, floor):
        rec["labels"] = labels.copy()
        rec["oof"] = {k: v.copy() for k, v in oof.items()}
        rec["chosen"] = dict(choose(labels, oof, step, floor)["weights"])
        # every member takes some weight, so that every member is trained and can be read
        return {**choose(labels, oof, step, floor),
                "weights": {"fused": 0.98, "text": 0.01, "audio": 0.01}}

    predict = methods.predict

    def recording_predict(model, docs, *a, **k):
        if model.config.has_members:
            rec["test"] = trainer.member_probabilities(model, docs)
        return predict(model, docs, *a, **k)

    trainer.weights_from_oof, methods.predict = recording, recording_predict
    try:
        ev._task(spec, train, test, model_params, training_params, seed, None)
    finally:
        trainer.weights_from_oof, methods.predict = choose, predict
    rec["test_labels"] = test.labels.copy()
    mods = ("audio", "text")
    power = float(model_params.get("class_weight_power", 1.0))

    def linear(fit_docs, pred_docs):
        return trainer.linear_member_probabilities(fit_docs, pred_docs, mods, power, seed)

    if "oof" in rec:  # the same inner folds as the members' (choose_member_weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            splits = list(stratified_splitter(member_folds, train.groups, seed).split(
                np.zeros(len(train)), train.labels, train.groups))
        oof = np.zeros((len(train), train.n_classes))
        for a, b in splits:
            oof[b] = linear(train.subset(a), train.subset(b))
        rec["oof"]["linear"] = oof
    rec["test"]["linear"] = linear(train, test)
    return rec


def record(regime: str, cache: Path, n_jobs: int, seed: int | None = None) -> list[dict]:
    params = load_params()
    ep = params["evaluation"]
    seed = ep["seed"] if seed is None else seed
    path = cache / (f"{regime}.pkl" if seed == ep["seed"] else f"{regime}_seed{seed}.pkl")
    if path.is_file():
        return pickle.loads(path.read_bytes())
    from joblib import Parallel, delayed

    features, documents = regime_features(regime, ROOT / "data/benchmarks/quality", params, 0)
    docs, _ = build_document_set(features, documents, min_docs_per_class=ep["n_splits"])
    folds = make_folds(docs, ep["n_splits"], ep["n_repeats"], seed)
    settings = resolve_training_settings(params["training"])
    tp = {**settings.training_params, "progress": False}
    spec = resolve_methods(["hilbert"])[0]
    calls = [(docs.subset(tr), docs.subset(te), ev.fold_seed(seed, r, f))
             for r, f, tr, te in ev.iter_folds(folds, docs)]
    t0 = time.perf_counter()
    # the network alone: the replay records the network's members and fits its own linear one
    mp = {**settings.model_params, "wide_path": False}
    recs = Parallel(n_jobs=n_jobs)(
        delayed(_record_fold)(spec, tr, te, mp, tp, s, tp["member_folds"])
        for tr, te, s in calls)
    print(f"{regime}: {len(recs)} folds recorded in {time.perf_counter() - t0:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(recs))
    tmp.replace(path)
    return recs


def grid(step: float, floor: float) -> list[tuple[float, ...]]:
    """Weights of (fused, text, audio, linear) on a ``step`` grid, fused at least ``floor``,
    the larger fused weight first (ties go to it)."""
    vals = np.arange(0, 1 + 1e-9, step)
    out = [tuple(float(x) for x in w) for w in itertools.product(vals, repeat=4)
           if abs(sum(w) - 1) < 1e-9 and w[0] >= floor - 1e-9]
    return sorted(out, key=lambda w: -w[0])


def chooser(allowed: tuple[str, ...], admit: bool, score: str, step: float, floor: float):
    """A rule: among the :func:`grid` weights that give weight only to ``allowed`` members (and, with
    ``admit``, only to those whose own out-of-fold macro-F1 reaches the fused network's), the
    one whose out-of-fold average has the best ``score`` (``log_loss`` or ``macro_f1``)."""
    def rule(labels, oof):
        f1 = {k: macro_f1(labels, oof[k]) for k in M4}
        ok = {k for k in M4[1:] if k in allowed and (not admit or f1[k] >= f1["fused"])}
        best = None
        for w in grid(step, floor):
            if any(wi > 0 and k not in ok for wi, k in zip(w[1:], M4[1:], strict=True)):
                continue
            mix = sum(wi * oof[k] for wi, k in zip(w, M4, strict=True))
            s = _log_loss(labels, mix) if score == "log_loss" else -macro_f1(labels, mix)
            if best is None or s < best[0] - 1e-12:
                best = (s, w)
        return dict(zip(M4, best[1], strict=True))
    return rule


def rules(step: float, floor: float, linear_rule: str, margin: float) -> dict:
    def network(labels, oof):
        w = weights_from_oof(labels, {k: oof[k] for k in MEMBERS}, step, floor)["weights"]
        return {**w, "linear": 0.0}

    def then_linear(lin_step, score, margin=margin):
        """The network's members, then the linear member's share on a ``lin_step`` grid:
        ``score`` "margin" (½ when the linear member's out-of-fold macro-F1 is within
        ``margin`` of the network's, else 0) or "log_loss" (the lowest out-of-fold log-loss)
        as :func:`linear_weight_from_oof` chooses it, or "macro_f1" (the best out-of-fold
        macro-F1 of the mixture)."""
        def rule(labels, oof):
            w = network(labels, oof)
            net = sum(w[k] * oof[k] for k in MEMBERS)
            if score in ("log_loss", "margin"):
                lin = linear_weight_from_oof(labels, net, oof["linear"], lin_step, floor,
                                             rule=score, margin=margin)["linear"]
            else:
                ws = linear_weight_grid(lin_step, floor)
                f1 = [macro_f1(labels, (1 - x) * net + x * oof["linear"]) for x in ws]
                lin = ws[int(np.argmax(f1))]  # the first best: a tie to the network
            return {**{k: (1 - lin) * w[k] for k in MEMBERS}, "linear": lin}
        return rule

    def pick(allowed, admit, score):
        return chooser(allowed, admit, score, step, floor)

    def no_members(labels, oof):
        """The fused network, then the linear member's share by the default rule against it:
        bench_quality's ``no_members`` row (the view of hilbert's own fit)."""
        lin = linear_weight_from_oof(labels, oof["fused"], oof["linear"], step, floor,
                                     rule=linear_rule, margin=margin)["linear"]
        return {"fused": 1 - lin, "text": 0.0, "audio": 0.0, "linear": lin}

    return {
        "current": then_linear(step, linear_rule),
        "network": network,
        "no_members": no_members,
        "linear_by_log_loss": then_linear(step, "log_loss"),
        "linear_step_8th": then_linear(0.125, "log_loss"),
        "linear_by_f1": then_linear(step, "macro_f1"),
        "linear_step_8th_f1": then_linear(0.125, "macro_f1"),
        "margin_0": then_linear(step, "margin", 0.0),
        "margin_05": then_linear(step, "margin", 0.05),
        "margin_10": then_linear(step, "margin", 0.10),
        "margin_15": then_linear(step, "margin", 0.15),
        "margin_20": then_linear(step, "margin", 0.20),
        "linear_half": lambda labels, oof: {**{k: 0.5 * v for k, v in network(labels, oof).items()
                                              if k != "linear"}, "linear": 0.5},
        "fused": lambda labels, oof: {"fused": 1.0, "text": 0.0, "audio": 0.0, "linear": 0.0},
        "members_no_gate": pick(MEMBERS, False, "log_loss"),
        "members_f1": pick(MEMBERS, False, "macro_f1"),
        "linear_gate_logloss": pick(("fused", "linear"), True, "log_loss"),
        "linear_logloss": pick(("fused", "linear"), False, "log_loss"),
        "linear_f1": pick(("fused", "linear"), False, "macro_f1"),
        "all_gate_logloss": pick(M4, True, "log_loss"),
        "all_f1": pick(M4, False, "macro_f1"),
    }


def replay(recs: list[dict], rule) -> tuple[float, list[tuple[float, ...]]]:
    scores, chosen = [], []
    for r in recs:
        w = (rule(r["labels"], r["oof"]) if "oof" in r
             else {"fused": 1.0, "text": 0.0, "audio": 0.0, "linear": 0.0})
        chosen.append(tuple(w[k] for k in M4))
        scores.append(macro_f1(r["test_labels"], sum(w[k] * r["test"][k] for k in M4)))
    return float(np.mean(scores)), chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regimes", default="demo,text,both,pairing")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None,
                    help="fold seed (default: evaluation.seed, the benchmark's folds)")
    ap.add_argument("--cache", default=str(ROOT / "data" / "benchmarks" / "member_rules"))
    args = ap.parse_args(argv)
    tp = resolve_training_settings(load_params()["training"]).training_params
    rule_set = rules(tp["member_step"], tp["member_floor"], tp["linear_rule"],
                     tp["linear_margin"])
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    table = {}
    for regime in regimes:
        recs = record(regime, Path(args.cache), args.n_jobs, args.seed)
        table[regime] = {name: replay(recs, rule)[0] for name, rule in rule_set.items()}
        table[regime]["linear alone"] = float(np.mean(
            [macro_f1(r["test_labels"], r["test"]["linear"]) for r in recs]))
    names = list(next(iter(table.values())))
    print("| rule | " + " | ".join(regimes) + " |")
    print("|---|" + "---|" * len(regimes))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{table[r][name]:.3f}" for r in regimes) + " |")
    diffs = {n: np.mean([table[r][n] - table[r]["current"] for r in regimes])
             for n in rule_set if n != "current"}
    print("member_rules: " + " ".join(f"{n}={d:+.3f}" for n, d in diffs.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
