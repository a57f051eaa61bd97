"""One table of every run: the DVC experiments of this repository side by side
(docs/reproducibility.md, "Sweeps as DVC experiments").

:func:`dvc_experiments` asks DVC (``dvc exp show --json``) for the workspace, the committed
baselines and every experiment; :func:`experiments_table` turns that into one row per run with
the parameters that differ between runs and the headline numbers of the evaluation
(``data/08_reporting/headline.json``): hilbert's macro-F1, the network alone, the best
alternative with the paired difference and its interval, and what the evaluation's fits cost.
:func:`experiments_markdown` writes it for people, sorted by hilbert's score with the best run
marked. The JSON layout is DVC 3's (checked against DVC 3.67 in the tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hilbert_pipeline.errors import UserError

HEADLINE = "data/08_reporting/headline.json"
METRIC_COLUMNS = ("hilbert_f1", "network_f1", "best", "best_f1", "diff", "ci_lo", "ci_hi",
                  "fit_seconds")


class ExperimentsError(UserError):
    """DVC could not list the experiments (no DVC repository, no dvc executable, ...)."""


def dvc_executable() -> str:
    """The ``dvc`` next to this Python (the project's virtual environment), else on PATH."""
    here = Path(sys.executable).with_name("dvc")
    found = str(here) if here.exists() else shutil.which("dvc")
    if not found:
        raise ExperimentsError("the dvc command was not found: install the project (make setup) "
                               "or put dvc on PATH")
    return found


def dvc_experiments(repo: str | Path = ".") -> list[dict]:
    """The entries of ``dvc exp show --json`` for the workspace, ``HEAD`` and every branch, each
    baseline once: ``--all-branches`` alone leaves out a detached ``HEAD`` (where an interrupted
    ``dvc exp run`` leaves the repository), and the current commit's experiments with it."""
    repo = Path(repo)
    if not (repo / ".dvc").is_dir():
        raise ExperimentsError(f"{repo.resolve()} is not a DVC repository (no .dvc folder): "
                               "experiments need `git init` and `dvc init` in the project "
                               "(docs/reproducibility.md)")
    entries: list[dict] = []
    seen: set[str] = set()
    for extra in ([], ["--all-branches"]):
        proc = subprocess.run([dvc_executable(), "exp", "show", "--json", *extra], cwd=repo,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ExperimentsError(f"`dvc exp show --json` failed in {repo.resolve()}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        try:
            shown = json.loads(proc.stdout or "[]")
        except json.JSONDecodeError as exc:
            raise ExperimentsError(f"`dvc exp show --json` printed no JSON: {exc}") from exc
        for entry in shown:
            rev = str(entry.get("rev"))
            if rev not in seen:
                seen.add(rev)
                entries.append(entry)
    return entries


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value


def _row(name: str, kind: str, data: Mapping[str, Any], status: str,
         metrics_file: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for block in (data.get("params") or {}).values():
        # each Kedro parameter file owns its top-level keys: the key path alone is unambiguous
        _flatten("", (block or {}).get("data") or {}, params)
    head = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data") or {}
    if status not in ("done", "success"):
        head = {}  # a queued or running experiment shows the workspace's files, not its own
    rev = "" if kind == "workspace" or data.get("rev") == "workspace" else \
        (data.get("rev") or "")[:7]
    row: dict[str, Any] = {"experiment": name, "kind": kind, "rev": rev,
                           "timestamp": data.get("timestamp"),
                           "status": "no metrics" if status == "done" and not head else status}
    for key in METRIC_COLUMNS:
        row[key] = head.get(key)
    if head and row["network_f1"] is None:
        row["network_f1"] = row["hilbert_f1"]  # absent: hilbert is the network alone
    row["params"] = params
    return row


def experiments_table(exp_show: Sequence[Mapping[str, Any]],
                      metrics_file: str = HEADLINE) -> pd.DataFrame:
    """One row per run (workspace, each baseline commit, each experiment) from the JSON of
    ``dvc exp show --json``: ``experiment``, ``kind`` (workspace/baseline/experiment), ``rev``,
    ``timestamp``, ``status`` (done, queued, running, failed, no metrics), the headline metrics
    and one column per parameter whose value differs between the runs with metrics. Sorted by
    ``hilbert_f1`` (best first; runs without metrics last); ``top`` marks the best run."""
    rows: list[dict[str, Any]] = []
    for entry in exp_show:
        data = entry.get("data") or {}
        if entry.get("rev") == "workspace":
            rows.append(_row("workspace", "workspace", data, "done", metrics_file))
            continue
        if entry.get("experiments") or not any(r["kind"] == "baseline" for r in rows):
            # a commit is listed when it is the current one (the first) or has experiments
            rows.append(_row(entry.get("name") or (entry.get("rev") or "")[:7], "baseline",
                             data, "done", metrics_file))
        for exp in entry.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state") or "done"
            status = {"success": "done"}.get(state, state)
            for rev in exp.get("revs") or []:
                rows.append(_row(exp.get("name") or rev.get("name") or rev.get("rev", "")[:7],
                                 "experiment", rev.get("data") or {}, status, metrics_file))
    keys = sorted({k for r in rows for k in r["params"]})
    with_metrics = [r for r in rows if r["hilbert_f1"] is not None]
    differ = [k for k in keys
              if len({json.dumps(r["params"].get(k), sort_keys=True, default=str)
                      for r in (with_metrics or rows)}) > 1]
    for r in rows:
        params = r.pop("params")
        for k in differ:
            r[k] = params.get(k)
    table = pd.DataFrame(rows, columns=["experiment", "kind", "rev", "timestamp", "status",
                                        *METRIC_COLUMNS, *differ])
    table = table.sort_values("hilbert_f1", ascending=False, na_position="last",
                              kind="stable").reset_index(drop=True)
    table.insert(0, "top", False)
    if table["hilbert_f1"].notna().any():
        table.loc[0, "top"] = True
    table.attrs["changed_params"] = differ
    return table


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and pd.isna(x))


def _num(x: Any, digits: int = 3) -> str:
    return "–" if _missing(x) else f"{float(x):.{digits}f}"


def experiments_markdown(table: pd.DataFrame) -> str:
    """The table for people: one line per run, best (by hilbert's macro-F1) first and marked."""
    changed = list(table.attrs.get("changed_params", []))
    head = ["", "experiment", *changed, "hilbert", "network alone", "best alternative",
            "hilbert − best [95 % CI]", "fit s", "status"]
    lines = ["# Experiments", "",
             "Every run DVC knows (`dvc exp show`), sorted by hilbert's macro-F1 (mean over the "
             "folds); ★ = best. Parameters: only those that differ between runs. "
             "Paired difference: hilbert minus the best alternative, fold by fold, with its "
             "corrected 95 % interval. Collected by `kedro run --pipelines experiments`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        best = f"{r['best']} {_num(r['best_f1'])}" if r["best"] is not None and \
            isinstance(r["best"], str) else "–"
        diff = "–" if r["diff"] is None or pd.isna(r["diff"]) else \
            f"{float(r['diff']):+.3f} [{float(r['ci_lo']):+.3f}, {float(r['ci_hi']):+.3f}]"
        cells = ["★" if r["top"] else "", f"{r['experiment']} ({r['rev']})"
                 if r["rev"] else str(r["experiment"]),
                 *["–" if _missing(r[k]) else str(r[k]) for k in changed],
                 _num(r["hilbert_f1"]), _num(r["network_f1"]),
                 best, diff, _num(r["fit_seconds"], 0), str(r["status"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
