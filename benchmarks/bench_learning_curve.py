"""Learning curve: HILBERT's network and the logistic regressions as training documents grow.

Corpus (``hilbert_pipeline.demo.regimes.curve_documents``): 1300 documents of three consecutive
sentences cut from the full State of the Union addresses, labelled with the era of the address
(the quality benchmark's ``text`` classes and shares), each spoken with a random espeak-ng voice,
rate and pitch, so the label lives in the words. A quarter of each era's addresses make a fixed
test set of 300 documents; the other addresses make the training pool of 1000, so no address is
on both sides.

For each size n (default 60, 125, 250, 500, 1000) and repeat r, the first n documents of a seeded,
class-stratified order of the pool train every method (nested: the 125 contain the 60); all are
scored on the same 300 test documents. Methods: ``no_wide`` (the default network, without its
linear member) and the three
logistic regressions on mean-pooled features; ``--methods`` may add other networks (e.g.
``text_only``: the same network on the text alone), shown as extra columns and dashed lines. The table and the figure show the mean macro-F1
over repeats and the network's difference from the best logistic regression *at each size*.

    python benchmarks/bench_learning_curve.py [--sizes 60,125,250,500,1000] [--repeats 3]
        [--jobs 2] [--out docs/images/learning_curve.png]

Last line: ``learning_curve: sizes=... network_minus_best_logreg=... crossover=<n or none>``.
The corpus and its features are cached under ``data/benchmarks/curve`` (first run: about 15
minutes of speech synthesis and embedding on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))
from bench_quality import load_params, regime_features  # noqa: E402

import hilbert_pipeline  # noqa: E402,F401  (pins the CPU kernels before torch loads)
from hilbert_pipeline.demo.regimes import curve_documents  # noqa: E402
from hilbert_pipeline.documents import build_document_set  # noqa: E402
from hilbert_pipeline.evaluation.evaluate import _task as evaluation_task  # noqa: E402
from hilbert_pipeline.evaluation.methods import resolve_methods  # noqa: E402
from hilbert_pipeline.metrics import macro_f1  # noqa: E402
from hilbert_pipeline.training.params import resolve_training_settings  # noqa: E402

LOGREGS = ("text_logreg", "concat_logreg", "audio_logreg")
#: the network alone (the default hilbert without its linear member): what the curve measures
NETWORK = "no_wide"


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of positions whose every prefix keeps the class shares (round-robin over
    the classes in proportion to their counts), so the n first documents are a stratified draw
    and each size contains the smaller ones."""
    rng = np.random.default_rng(seed)
    queues = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)}
    share = {c: len(q) / len(labels) for c, q in queues.items()}
    taken = {c: 0 for c in queues}
    order = []
    for i in range(len(labels)):
        # the class furthest below its share of the first i + 1 documents goes next
        c = max((c for c in queues if taken[c] < len(queues[c])),
                key=lambda c: share[c] * (i + 1) - taken[c])
        order.append(queues[c][taken[c]])
        taken[c] += 1
    return np.array(order, dtype=np.int64)


def _task(spec, train, test, mp, tp, seed):
    """One fit as the evaluation runs it (its worker task: the thread count, the method), scored
    on the test set: ``(macro-F1, seconds of the fit)``."""
    res = evaluation_task(spec, train, test, mp, tp, seed, None)
    return macro_f1(test.labels, res.proba), res.seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="60,125,250,500,1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default=NETWORK + "," + ",".join(LOGREGS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(ROOT / "data" / "benchmarks"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "images" / "learning_curve.png"))
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")

    params = load_params()
    t0 = time.perf_counter()
    features, documents = regime_features("curve", Path(args.work), params, args.seed)
    docs, _ = build_document_set(features, documents, min_docs_per_class=1)
    split = {d["doc_id"]: d["split"] for d in curve_documents(args.seed)}
    is_test = np.array([split[d] == "test" for d in docs.doc_ids])
    pool, test = docs.subset(np.flatnonzero(~is_test)), docs.subset(np.flatnonzero(is_test))
    if max(sizes) > len(pool):
        ap.error(f"the largest size {max(sizes)} exceeds the pool of {len(pool)} documents")
    print(f"corpus: {len(pool)} training-pool and {len(test)} test documents, classes "
          f"{dict(zip(docs.label_names, test.class_counts().tolist(), strict=True))} in the test "
          f"set ({time.perf_counter() - t0:.0f} s)", flush=True)

    settings = resolve_training_settings(params["training"])
    mp, tp = settings.model_params, {**settings.training_params, "progress": False}
    specs = resolve_methods(methods)
    tasks = []
    for r in range(args.repeats):
        order = nested_order(pool.labels, args.seed + r)
        for n in sizes:
            train = pool.subset(np.sort(order[:n]))
            for spec in specs:
                tasks.append(((spec.name, n, r), (spec, train, test, mp, tp,
                                                  args.seed + 1000 * r + n)))
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    # largest fits first, so the pool stays busy to the end
    tasks.sort(key=lambda t: -t[0][1])
    rows = []
    results = Parallel(n_jobs=args.jobs, return_as="generator")(
        delayed(_task)(*a) for _, a in tasks)
    for (key, _), (f1, sec) in tqdm(zip(tasks, results, strict=True), total=len(tasks),
                                    desc="learning curve", unit="fit"):
        rows.append({"method": key[0], "n_train": key[1], "repeat": key[2], "macro_f1": f1,
                     "seconds": sec})
    df = pd.DataFrame(rows)
    table = df.groupby(["n_train", "method"]).macro_f1.agg(["mean", "std"]).unstack("method")
    means = table["mean"]
    lr_cols = [m for m in LOGREGS if m in means]
    best_name = means[lr_cols].idxmax(axis=1)
    # the paired difference per repeat (same documents), network minus the size's best LR
    per = df.pivot_table(index=["n_train", "repeat"], columns="method", values="macro_f1")
    diff = per[NETWORK] - np.array([per.loc[(n, r), best_name[n]] for n, r in per.index])
    diff = diff.groupby(level=0).agg(["mean", "std"])

    # other networks (e.g. text_only) get their own columns after hilbert's
    extra = [m for m in methods if m not in LOGREGS and m != NETWORK]
    lines = ["| training documents | hilbert (network) | " + " | ".join(extra + lr_cols)
             + " | network − best LR (± sd over repeats) |",
             "|---" * (len(extra) + len(lr_cols) + 3) + "|"]
    for n in sizes:
        cells = [f"{means.loc[n, m]:.3f} ± {table['std'].loc[n, m]:.3f}"
                 for m in [NETWORK, *extra]]
        for m in lr_cols:
            cell = f"{means.loc[n, m]:.3f} ± {table['std'].loc[n, m]:.3f}"
            cells.append(f"**{cell}**" if m == best_name[n] else cell)
        lines.append(f"| {n} | " + " | ".join(cells)
                     + f" | {diff.loc[n, 'mean']:+.3f} ± {diff.loc[n, 'std']:.3f} |")
    print("\n".join(lines))
    fit_time = df.groupby(["n_train", "method"]).seconds.mean().unstack("method").round(1)
    print("\nmean seconds per fit:\n" + fit_time.to_string())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in [NETWORK, *extra, *lr_cols]:
        ax.errorbar(sizes, [means.loc[n, m] for n in sizes],
                    yerr=[table["std"].loc[n, m] for n in sizes], marker="o", capsize=3,
                    label="hilbert (network)" if m == NETWORK else m,
                    linewidth=2.2 if m == NETWORK else 1.2,
                    linestyle="--" if m in extra else "-")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("training documents")
    ax.set_ylabel(f"macro-F1 on {len(test)} held-out documents")
    ax.set_title("Learning curve (label in the words, 4 eras)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(out)
    print(f"figure: {out}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))

    # the smallest size from which the network is ahead at every larger size
    crossover = next((n for n in sizes if all(diff.loc[k, "mean"] > 0 for k in sizes if k >= n)),
                     None)
    print(f"learning_curve: sizes={','.join(map(str, sizes))} network_minus_best_logreg="
          + ",".join(f"{diff.loc[n, 'mean']:+.3f}" for n in sizes)
          + f" crossover={crossover if crossover is not None else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
