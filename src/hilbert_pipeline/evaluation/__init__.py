"""Evaluation (no Kedro): the methods (:mod:`.methods`), every method on the same folds
(:mod:`.evaluate`), the statistics of the paired comparison (:mod:`.statistics`), the reports
(:mod:`.report`) and figures (:mod:`.plots`), and the segment-level baselines."""
