"""The inference report: one self-contained HTML file (inline CSS and SVG, no script, no link).

A table of documents (prediction, confidence, modalities, reliance on audio and text) and, per
document, its top segments and a small plot of the pooling attention over the recording's time.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;
max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0 1em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.flag{color:#a15c00;font-weight:600}
.bar{display:inline-block;height:.7em;background:#4c78a8;vertical-align:middle}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))


def _num(x: Any, digits: int = 3, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return '<span class="muted">–</span>'
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _mmss(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"


def attention_svg(starts: Sequence[float], ends: Sequence[float], weights: Sequence[float],
                  top: Sequence[int] = (), width: int = 640, height: int = 90) -> str:
    """Inline SVG: one bar per segment at its time span, height = its value (attention weight,
    or signed relevance: bars below the axis push away from the predicted class)."""
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    w = np.asarray(weights, dtype=float)
    if len(w) == 0 or not np.isfinite(ends).any():
        return ""
    t0, t1 = float(np.nanmin(starts)), float(np.nanmax(ends))
    span = max(t1 - t0, 1e-6)
    w = np.nan_to_num(w)
    wmax = max(float(np.abs(w).max()), 1e-12)
    signed = bool((w < 0).any())
    pad_l, pad_b = 34, 16
    plot_w, plot_h = width - pad_l - 4, height - pad_b - 4
    zero = 4 + (plot_h / 2 if signed else plot_h)
    scale = plot_h / 2 if signed else plot_h
    parts = [f'<svg width="{width}" height="{height}" '
             f'role="img" aria-label="segment weights over time">',
             f'<line x1="{pad_l}" y1="{zero:.1f}" x2="{width - 4}" y2="{zero:.1f}" '
             'stroke="#999"/>']
    topset = {int(i) for i in top}
    for i, (s, e, wi) in enumerate(zip(starts, ends, w, strict=True)):
        if not (math.isfinite(s) and math.isfinite(e)):
            continue
        x = pad_l + (s - t0) / span * plot_w
        bw = max((e - s) / span * plot_w, 1.0)
        bh = abs(wi) / wmax * scale
        color = "#e45756" if i in topset else "#4c78a8"
        y = zero - bh if wi >= 0 else zero
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
                     f'height="{bh:.1f}" fill="{color}"><title>{_mmss(s)}–{_mmss(e)}: '
                     f'{wi:.3g}</title></rect>')
    parts.append(f'<text x="{pad_l}" y="{height - 3}" font-size="10" fill="#555">'
                 f'{_mmss(t0)}</text>')
    parts.append(f'<text x="{width - 4}" y="{height - 3}" font-size="10" fill="#555" '
                 f'text-anchor="end">{_mmss(t1)}</text>')
    parts.append(f'<text x="2" y="12" font-size="10" fill="#555">{wmax:.2g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def inference_html(predictions: pd.DataFrame, explanations: pd.DataFrame,
                   segments: pd.DataFrame, attention: Mapping[str, pd.DataFrame],
                   metrics: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """The report. ``attention[doc_id]``: that document's segments (start, end, weight)."""
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<title>HILBERT inference report</title>", f"<style>{CSS}</style></head><body>",
           "<h1>HILBERT inference report</h1>",
           f"<p>Model <code>{_e(info.get('model_path'))}</code> (classes: "
           f"{_e(', '.join(info.get('label_names', [])))}); corpus <code>"
           f"{_e(info.get('corpus'))}</code>; {len(predictions)} document(s).</p>"]
    if info.get("form"):
        out.append(f"<p>The model's prediction is {_e(info['form'])} (chosen when it was "
                   "trained; docs/model.md, wide path).</p>")
    members, reason = info.get("members"), info.get("member_reason")
    if members and (reason or not any(float(v) for m, v in members.items() if m != "fused")):
        why = (_e(reason) if reason else "on held-out predictions when it was trained, neither "
               "reached the fused network's macro-F1")
        out.append(f"<p>The fused network predicts alone: its unimodal members took no weight "
                   f"({why}; docs/model.md, unimodal members).</p>")
    elif members:
        w = ", ".join(f"{_e(m)} {float(v):.2f}" for m, v in members.items())
        out.append(f"<p>It averages the fused network and its unimodal members with the weights "
                   f"{w} (chosen on held-out predictions when it was trained; docs/model.md, "
                   f"unimodal members).</p>")
    lw = info.get("linear_weight")
    if lw is not None:
        out.append(f"<p>The linear member (a logistic regression on the pooled features) takes "
                   f"{float(lw):.2f} of the final average and the network {1 - float(lw):.2f}"
                   + ("; the network predicts alone" if float(lw) == 0 else "")
                   + " (the weight was chosen when the model was trained; docs/model.md, "
                   "item 5).</p>")
    out.append(_metrics_html(metrics))
    out.append(_table_html(predictions))
    for _, row in predictions.iterrows():
        out.append(_document_html(row, explanations, attention.get(str(row["doc_id"]))))
    out.append('<p class="muted">Reliance: the predicted class\'s probability minus its '
               "probability with that modality masked out (positive: the modality supported "
               "the decision; – where the document lacks one of the modalities). Attention: "
               "the joint pooling weight of each segment. Relevance: gradient x input of the "
               "predicted class's evidence (its logit minus the mean logit) against an average "
               "training document, per modality; positive pushes toward the prediction. Red "
               "bars: the top segments.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def _metrics_html(metrics: Mapping[str, Any]) -> str:
    m = metrics.get("metrics")
    if not m:
        return f'<p class="muted">{_e(metrics.get("note", "no labels: predictions only"))}</p>'
    cells = "".join(f"<tr><th>{_e(k)}</th><td class=\"num\">{_num(v)}</td></tr>"
                    for k, v in m.items())
    names = metrics.get("label_names", [])
    cm = metrics.get("confusion", {}).get("matrix", [])
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(f"<tr><th>{_e(n)}</th>" + "".join(f'<td class="num">{v}</td>' for v in r)
                   + "</tr>" for n, r in zip(names, cm, strict=False))
    return (f"<h2>External validation ({metrics.get('n_scored')} labelled documents)</h2>"
            f"<table>{cells}</table><p>Confusion matrix (rows: true class, columns: "
            f"predicted)</p><table><tr><th></th>{head}</tr>{body}</table>")


def _table_html(predictions: pd.DataFrame) -> str:
    rows = []
    for _, r in predictions.iterrows():
        conf = r.get("confidence")
        bar = ("" if conf is None or (isinstance(conf, float) and math.isnan(conf)) else
               f'<span class="bar" style="width:{60 * float(conf):.0f}px"></span> ')
        mod = str(r.get("modalities"))
        flag = f'<span class="flag">{_e(mod)}</span>' if mod != "audio+text" else _e(mod)
        label = r.get("label")
        rows.append(
            f'<tr><td><a href="#doc-{_e(r["doc_id"])}">{_e(r["doc_id"])}</a></td>'
            f"<td>{_e(r.get('predicted_label'))}</td><td>{bar}{_num(conf)}</td><td>{flag}</td>"
            f"<td class=\"num\">{_num(r.get('reliance_audio'), signed=True)}</td>"
            f"<td class=\"num\">{_num(r.get('reliance_text'), signed=True)}</td>"
            f"<td>{_e(label)}</td><td>{_e(r.get('note'))}</td></tr>")
    return ("<h2>Documents</h2><table><tr><th>document</th><th>prediction</th>"
            "<th>confidence</th><th>modalities</th><th>reliance on audio</th>"
            "<th>reliance on text</th><th>label</th><th>note</th></tr>" + "".join(rows)
            + "</table>")


def _document_html(row: pd.Series, explanations: pd.DataFrame,
                   attention: pd.DataFrame | None) -> str:
    d = str(row["doc_id"])
    parts = [f'<h2 id="doc-{_e(d)}">{_e(d)}: {_e(row.get("predicted_label"))} '
             f'({_num(row.get("confidence"))})</h2>']
    if row.get("note"):
        parts.append(f'<p class="flag">{_e(row["note"])}</p>')
    ex = explanations[explanations["doc_id"].astype(str) == d]
    by = str(ex["ranked_by"].iloc[0]) if len(ex) else "attention"
    if attention is not None and len(attention):
        top = [int(np.flatnonzero(attention["seg_idx"].to_numpy() == s)[0])
               for s in ex["seg_idx"] if (attention["seg_idx"] == s).any()]
        column = "weight" if by == "attention" else "relevance"
        what = ("pooling attention" if by == "attention" else
                "relevance (gradient x input; the attention is flat for this model)")
        parts.append(f'<p class="muted">{what} over the recording</p>')
        parts.append(attention_svg(attention["start"], attention["end"], attention[column],
                                   top))
    if len(ex):
        rows = "".join(
            f"<tr><td class=\"num\">{int(r['rank'])}</td><td>{_mmss(r['start'])}–"
            f"{_mmss(r['end'])}</td><td class=\"num\">{_num(r['weight'])}</td>"
            f"<td class=\"num\">{_num(r['relevance_audio'], signed=True)}</td>"
            f"<td class=\"num\">{_num(r['relevance_text'], signed=True)}</td>"
            f"<td>{_e(r['text']) or '<span class=muted>(no text)</span>'}</td></tr>"
            for _, r in ex.iterrows())
        parts.append("<table><tr><th>#</th><th>time</th><th>attention</th>"
                     "<th>relevance (audio)</th><th>relevance (text)</th><th>text</th></tr>"
                     f"{rows}</table>")
    return "".join(parts)
