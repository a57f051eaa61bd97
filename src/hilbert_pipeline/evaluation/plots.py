"""Figures of the evaluation and training reports (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def confusion_figure(cm: np.ndarray, cm_norm: np.ndarray, label_names: Sequence[str],
                     title: str):
    """Two panels: counts and row-normalised rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(label_names)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * n, 1.5 + 0.8 * n), squeeze=True)
    for ax, mat, sub, fmt in ((axes[0], cm, "counts", "d"),
                              (axes[1], cm_norm, "row-normalised (recall)", ".2f")):
        im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=mat.max() if mat.max() > 0 else 1)
        ax.set_xticks(range(n), label_names, rotation=45, ha="right")
        ax.set_yticks(range(n), label_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub)
        thr = mat.max() / 2 if mat.max() > 0 else 0.5
        for i in range(n):
            for j in range(n):
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center",
                        color="white" if mat[i, j] > thr else "black", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame, title: str = "training curves",
                  note: str | None = None):
    """Loss terms per epoch (left) and validation macro-F1 (right). ``note``: a line written on
    the left panel, e.g. why there are no epochs (a model that needed no training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for col in history.columns:
        if col.startswith("train_") and col not in ("train_temperature",):
            ax1.plot(history["epoch"], history[col], label=col[len("train_"):])
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss terms (unweighted), MI estimates")
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(fontsize=7)
    if note:
        ax1.text(0.5, 0.5, note, ha="center", va="center", wrap=True, fontsize=9,
                 transform=ax1.transAxes)
    if "val_macro_f1" in history and history["val_macro_f1"].notna().any():
        ax2.plot(history["epoch"], history["val_macro_f1"], marker="o", ms=3)
        best = history[history["best"]] if "best" in history else history.iloc[:0]
        if not best.empty:
            ax2.axvline(int(best["epoch"].iloc[0]), color="gray", ls="--", label="kept epoch")
            ax2.legend(fontsize=7)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("inner-validation macro-F1")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
