"""A tuning worker process for the kill/resume and multi-worker tests.

Runs the real HILBERT objective on the tiny synthetic corpus against ``--storage`` and prints one
JSON line with the trial numbers it finished. ``--ready``/``--go``: touch ``ready`` after the study
is opened, then wait for ``go`` to exist, so a test can start several workers at the same time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test-data builders

from tuning_tiny import TINY_MODEL, TINY_SPACE, TINY_TRAINING, tiny_train_docs  # noqa: E402

from hilbert_pipeline.tuning import SearchSpace, make_objective, open_study, run_worker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--n-trials", type=int, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=TINY_TRAINING["epochs"])
    ap.add_argument("--ready")
    ap.add_argument("--go")
    ap.add_argument("--hold-trial", type=int, default=None,
                    help="when this trial number starts, touch --held and wait (to be killed "
                         "while the trial is RUNNING)")
    ap.add_argument("--held")
    ap.add_argument("--grace-period", type=int, default=3,
                    help="seconds without a heartbeat before another worker fails a trial")
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = SearchSpace.from_dict(TINY_SPACE)
    training = {**TINY_TRAINING, "epochs": args.epochs, "patience": args.epochs}
    objective = make_objective(tiny_train_docs(), space, TINY_MODEL, training, n_folds=3,
                               seed=args.seed)
    handle = open_study(args.storage, args.study, seed=args.seed, n_startup_trials=3,
                        pruner_startup_trials=2, pruner_warmup_steps=2, heartbeat_interval=1,
                        grace_period=args.grace_period)
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.05)
    if args.hold_trial is not None:
        train = objective

        def objective(trial):  # noqa: F811 - the same objective, held open at one trial
            if trial.number == args.hold_trial:
                Path(args.held).touch()
                time.sleep(600)
            return train(trial)

    res = run_worker(handle, objective, n_trials=args.n_trials, progress=False)
    print(json.dumps({"completed": res.completed, "pruned": res.pruned,
                      "stop_reason": res.stop_reason}), flush=True)


if __name__ == "__main__":
    main()
