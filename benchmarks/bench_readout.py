"""Readout benchmark: why a logistic regression on mean embeddings reads a diffuse label better
than the network does (docs/model.md, "Where the *demo* gap comes from").

On one quality-benchmark corpus (``bench_quality.py``'s features, the same 3 x 5 folds), one
modality, it fits small models that go step by step from the pooled logistic regression towards
the network's text path, and prints each one's macro-F1 and its paired difference to the
logistic regression with C chosen by inner cross-validation (``text_logreg``'s fit):

* ``logreg C=…``: the same logistic regression with a fixed C (no inner CV);
* ``probe …``: a linear softmax on the same standardised document means, trained with the
  network's recipe (AdamW, its learning rate, batch size, epochs, weight averaging, label
  smoothing and class weights, from ``conf/base``), with decoupled weight decay ``wd`` or a
  coupled L2 penalty ``l2`` (``l2 · ½‖W‖²`` added to the mean loss, as a logistic regression's);
* ``proj+mean …``: the network's text path without attention: its own projection
  (``ModalityProjection``: the segment features standardised per column, ``Linear(d_m, d)``
  with the principal start of half the rows, GELU, dropout, positions), the mean over the
  document's segments, a linear head; ``head`` / ``proj`` are coupled
  L2 penalties on the head's and the projection's weights; ``principal=1 proj lr x0.1`` starts
  every projection row at the principal axes and trains the projection at a tenth of the
  learning rate (a linear probe that is then fine-tuned, in one run);
* ``penalty by inner CV …``: one of three penalties chosen per fit from ``--inner-folds``
  inner folds of the training documents, as the regression chooses C, by the mean of the
  folds' macro-F1, by the macro-F1 of the pooled out-of-fold predictions, or by their log-loss.

Usage: ``python benchmarks/bench_readout.py [--regime demo] [--modality text]
[--inner-folds 3]``. Needs the regime's features from ``bench_quality.py`` (built here the
same way when missing). On the 2-core machine, the two corpora at once (one thread each):
demo 9 min, text 5.5 min with 3 inner folds; 14 and 8 min with 5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import ROOT, load_params, regime_features  # noqa: E402

import hilbert_pipeline  # noqa: E402,F401  (pins the CPU kernels before torch loads)

# isort: split
import torch  # noqa: E402

from hilbert_pipeline.documents import (  # noqa: E402
    DocumentSet,
    build_document_set,
    collate,
    standardisation,
)
from hilbert_pipeline.evaluation.evaluate import fold_seed  # noqa: E402
from hilbert_pipeline.folds import make_folds, stratified_splitter  # noqa: E402
from hilbert_pipeline.metrics import macro_f1  # noqa: E402
from hilbert_pipeline.model import class_weights  # noqa: E402
from hilbert_pipeline.model.layers import ModalityProjection  # noqa: E402
from hilbert_pipeline.training.logreg import fit_logreg, full_proba  # noqa: E402


def padded(docs: DocumentSet, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One modality's segments (B, N, d_m) and masks (B, N), padded as the trainer pads them."""
    batch = collate(docs, range(len(docs)))
    return batch[modality].float(), batch[f"{modality}_mask"]


class ProjMean(torch.nn.Module):
    """The network's own projection (:class:`ModalityProjection`: per-column standardisation,
    ``Linear``, GELU, dropout, positions, with the principal start), the mean over the
    document's segments, a linear head."""

    def __init__(self, segments: np.ndarray, n_classes: int, model_p: dict,
                 principal: float | None = None) -> None:
        super().__init__()
        self.proj = ModalityProjection(segments.shape[1], int(model_p["d"]),
                                       float(model_p["dropout"]),
                                       bool(model_p["position_encoding"]),
                                       float(model_p["position_scale"]), "standardize")
        self.head = torch.nn.Linear(int(model_p["d"]), n_classes)
        self.proj.set_stats(*standardisation(segments))  # as the trainer sets them
        self.proj.init_principal(torch.as_tensor(segments), float(
            model_p["principal_init"] if principal is None else principal))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        m = mask.float()[..., None]
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1.0))


def train(model: torch.nn.Module, inputs: tuple, y: torch.Tensor, recipe: dict, penalties: dict,
          weight_decay: float, seed: int, slow: tuple[list, float] | None = None) -> None:
    """The network's recipe: AdamW, minibatches, label smoothing, class weights, gradient
    clipping, and the average of the weights over the last ``weight_average`` of the epochs.
    ``slow``: (parameters, factor) trained at ``factor`` times the learning rate, or None."""
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    slow_ids = {id(p) for p in slow[0]} if slow else set()
    groups = [{"params": [p for p in params if id(p) not in slow_ids]}]
    if slow:
        groups.append({"params": list(slow[0]), "lr": recipe["lr"] * slow[1]})
    opt = torch.optim.AdamW(groups, lr=recipe["lr"], weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=recipe["weights"],
                                        label_smoothing=recipe["label_smoothing"])
    epochs, bs = recipe["epochs"], recipe["batch_size"]
    start_avg = int(epochs * (1 - recipe["weight_average"]))
    avg, n_avg = None, 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), bs):
            b = order[i:i + bs]
            loss = loss_fn(model(*(t[b] for t in inputs)), y[b])
            for w, lam in penalties.items():
                loss = loss + lam * 0.5 * (w ** 2).sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, recipe["grad_clip"])
            opt.step()
        if epoch >= start_avg:
            n_avg += 1
            now = [p.detach().clone() for p in params]
            avg = now if avg is None else [a + (c - a) / n_avg for a, c in zip(avg, now, strict=True)]
    with torch.no_grad():
        for p, a in zip(params, avg, strict=True):
            p.copy_(a)
    model.eval()


#: the L2 penalties (head, projection) of the text path's rows, and the three of them that the
#: per-fit choice picks from
PENALTIES = [(0.0, 0.0), (1.0, 0.0), (0.0, 0.1), (1.0, 0.1), (1.0, 0.3), (1.0, 0.03)]
CANDIDATES = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.1)]
#: how the per-fit choice compares the candidates' inner out-of-fold predictions (higher wins;
#: a tie goes to the weaker penalty)
CRITERIA = {
    "mean macro-F1": lambda y, oof, parts: np.mean([macro_f1(y[b], oof[b]) for b in parts]),
    "pooled macro-F1": lambda y, oof, parts: macro_f1(y, oof),
    "log-loss": lambda y, oof, parts: -log_loss(y, oof, labels=np.arange(oof.shape[1])),
}
LPFT = "proj+mean principal=1 proj lr x0.1 head=1"


def path_name(lam_head: float, lam_proj: float) -> str:
    """The row name of the text path with these penalties, e.g. ``proj+mean head=1``."""
    return " ".join(["proj+mean", *(f"{k}={v:g}" for k, v in (("head", lam_head),
                                                               ("proj", lam_proj)) if v)])


def fit_text_path(train_docs: DocumentSet, test_docs: DocumentSet, mod: str, lam_head: float,
                  lam_proj: float, recipe: dict, model_p: dict, optim_p: dict, seed: int,
                  principal: float | None = None, proj_lr: float = 1.0) -> np.ndarray:
    """Class probabilities on ``test_docs`` of :class:`ProjMean` trained on ``train_docs`` with
    L2 penalties ``lam_head`` / ``lam_proj`` (and the projection's ``principal`` start and
    learning-rate factor ``proj_lr`` when given)."""
    seg_tr, seg_te = padded(train_docs, mod), padded(test_docs, mod)
    torch.manual_seed(seed)
    net = ProjMean(train_docs.real_segments(mod), recipe["weights"].numel(), model_p, principal)
    pen = {w: lam for w, lam in ((net.head.weight, lam_head), (net.proj.linear.weight, lam_proj))
           if lam}
    slow = (list(net.proj.parameters()), proj_lr) if proj_lr != 1.0 else None
    train(net, seg_tr, torch.as_tensor(np.asarray(train_docs.labels)), recipe, pen,
          optim_p["weight_decay"], seed, slow)
    with torch.no_grad():
        return torch.softmax(net(*seg_te), -1).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regime", default="demo")
    ap.add_argument("--modality", default="text", choices=("text", "audio"))
    ap.add_argument("--corpus-seed", type=int, default=0, help="as bench_quality.py's")
    ap.add_argument("--work-dir", default=str(ROOT / "data/benchmarks/quality"))
    ap.add_argument("--inner-folds", type=int, default=3,
                    help="inner folds of the per-fit choice of the penalty")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    params = load_params()
    ev, model_p, optim_p = (params["evaluation"], params["training"]["model"],
                            params["training"]["optim"])
    features, documents = regime_features(args.regime, Path(args.work_dir), params,
                                          args.corpus_seed)
    docs, _ = build_document_set(features, documents, min_docs_per_class=ev["n_splits"])
    folds = make_folds(docs, ev["n_splits"], ev["n_repeats"], ev["seed"])
    pos = {d: i for i, d in enumerate(docs.doc_ids)}
    power = float(model_p["class_weight_power"])
    mod = args.modality
    variants = ["logreg C by inner CV", "logreg C=0.001", "logreg C=1",
                "probe wd=0.01 (the network's)", "probe wd=10", "probe l2=1", "probe l2=4.5",
                *(path_name(*pen) for pen in PENALTIES), LPFT,
                *(f"penalty by inner CV, {c}" for c in CRITERIA)]
    rows: list[dict] = []
    chosen_c: list[float] = []
    chosen_pen: dict[str, list[tuple[float, float]]] = {c: [] for c in CRITERIA}
    t0 = time.time()
    groups = folds.groupby(["repeat", "fold"])
    for k, ((rep, fold), g) in enumerate(groups):
        train_docs = docs.subset([pos[d] for d in g[g.role == "train"].doc_id])
        test_docs = docs.subset([pos[d] for d in g[g.role == "test"].doc_id])
        seed = fold_seed(ev["seed"], rep, fold)  # the evaluation's own seed of this fold
        y_tr, y_te = np.asarray(train_docs.labels), np.asarray(test_docs.labels)
        n_classes = docs.n_classes
        recipe = {"lr": optim_p["lr"], "epochs": optim_p["epochs"],
                  "batch_size": optim_p["batch_size"], "grad_clip": optim_p["grad_clip"],
                  "weight_average": optim_p["weight_average"],
                  "label_smoothing": model_p["label_smoothing"],
                  "weights": class_weights(np.bincount(y_tr, minlength=n_classes),
                                           power).float()}
        scores: dict[str, float] = {}
        for name, c in (("logreg C by inner CV", None), ("logreg C=0.001", 0.001),
                        ("logreg C=1", 1.0)):
            clf, chosen, _ = fit_logreg(train_docs, seed, (mod,), class_weight_power=power, C=c)
            if c is None:
                chosen_c.append(chosen)
            proba = clf.predict_proba(test_docs.pooled_features((mod,)))
            scores[name] = macro_f1(y_te, full_proba(clf[-1], proba, n_classes))
        pooled_tr, pooled_te = train_docs.pooled_features((mod,)), test_docs.pooled_features((mod,))
        # not documents.standardisation: its std without the 1e-8 moves the 60-epoch probes'
        # macro-F1 by up to 0.006 on the text corpus, and the documented numbers are these
        mu, sd = pooled_tr.mean(0), pooled_tr.std(0) + 1e-8
        x_tr = torch.as_tensor((pooled_tr - mu) / sd, dtype=torch.float32)
        x_te = torch.as_tensor((pooled_te - mu) / sd, dtype=torch.float32)
        y = torch.as_tensor(y_tr)
        for name, wd, l2 in (("probe wd=0.01 (the network's)", optim_p["weight_decay"], 0.0),
                             ("probe wd=10", 10.0, 0.0), ("probe l2=1", 0.0, 1.0),
                             ("probe l2=4.5", 0.0, 4.5)):
            torch.manual_seed(seed)
            lin = torch.nn.Linear(x_tr.shape[1], n_classes)
            train(lin, (x_tr,), y, recipe, {lin.weight: l2} if l2 else {}, wd, seed)
            with torch.no_grad():
                scores[name] = macro_f1(y_te, torch.softmax(lin(x_te), -1).numpy())
        for pen in PENALTIES:
            scores[path_name(*pen)] = macro_f1(y_te, fit_text_path(
                train_docs, test_docs, mod, *pen, recipe, model_p, optim_p, seed))
        scores[LPFT] = macro_f1(y_te, fit_text_path(train_docs, test_docs, mod, 1.0, 0.0, recipe,
                                                    model_p, optim_p, seed, principal=1.0,
                                                    proj_lr=0.1))
        # the penalty chosen per fit, as the regression chooses C: inner folds of the training
        # documents, each candidate's out-of-fold predictions compared by each criterion
        inner = stratified_splitter(args.inner_folds, train_docs.groups, seed)
        oof = {cand: np.zeros((len(y_tr), n_classes)) for cand in CANDIDATES}
        parts = []
        for itr, ite in inner.split(np.zeros(len(y_tr)), y_tr, train_docs.groups):
            a, b = train_docs.subset(itr), train_docs.subset(ite)
            parts.append(ite)
            inner_recipe = {**recipe, "weights": class_weights(
                np.bincount(np.asarray(a.labels), minlength=n_classes), power).float()}
            for cand in CANDIDATES:
                oof[cand][ite] = fit_text_path(a, b, mod, *cand, inner_recipe, model_p, optim_p,
                                               seed)
        for crit, rule in CRITERIA.items():
            best = max(CANDIDATES, key=lambda cand, rule=rule: (
                rule(y_tr, oof[cand], parts), -CANDIDATES.index(cand)))
            chosen_pen[crit].append(best)
            scores[f"penalty by inner CV, {crit}"] = scores[path_name(*best)]
        rows += [{"method": v, "repeat": rep, "fold": fold, "macro_f1": scores[v]}
                 for v in variants]
        print(f"fold {k + 1}/{len(groups)} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).pivot_table(index=["repeat", "fold"], columns="method",
                                           values="macro_f1")
    base = table["logreg C by inner CV"]
    print(f"readout: regime={args.regime} modality={mod}, {ev['n_repeats']} x {ev['n_splits']} "
          f"folds, {time.time() - t0:.0f} s; the difference is paired, fold by fold, with the "
          "logistic regression whose C is chosen by inner CV (W/T/L over the folds)")
    picked = ", ".join(f"{c:g} in {n}" for c, n in zip(*np.unique(chosen_c, return_counts=True),
                                                        strict=True))
    print(f"  (the inner CV chose C = {picked} of the folds)")
    for crit, picks in chosen_pen.items():
        pens = ", ".join(f"{path_name(*c)} in {picks.count(c)}" for c in CANDIDATES)
        print(f"  (the text path's {args.inner_folds} inner folds by {crit} chose: {pens} of "
              "the folds)")
    for v in variants:
        diff = table[v] - base
        extra = "" if v == variants[0] else (
            f"  {diff.mean():+.3f}  {(diff > 0).sum()}/{(diff == 0).sum()}/{(diff < 0).sum()}")
        print(f"  {v:42s} macro-F1 {table[v].mean():.3f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
