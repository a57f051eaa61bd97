"""``tuning``: segment features + documents -> ``best_params`` (+ trials table, plots, summary).

Not part of ``__default__``: the study is the most expensive step and its result is used by
training only with ``training.use_tuned: true``.
"""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.tuning.nodes import tune_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(tune_node,
             inputs=["segment_features", "documents", "params:tuning", "params:training",
                     "params:classes.label_map", "params:classes.min_class_size",
                     "params:cluster"],
             outputs=["best_params", "tuning_summary", "tuning_trials",
                      "tuning_history_plot", "tuning_importance_plot"],
             name="tune_hilbert"),
    ])
