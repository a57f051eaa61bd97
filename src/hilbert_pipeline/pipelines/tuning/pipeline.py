"""``tuning``: segment features + documents -> ``best_params`` (+ trials table, plots, summary).

Not part of ``__default__``: the study is the most expensive step and its result is used by
training only with ``training.use_tuned: true``.
"""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.training.pipeline import documents_pipeline
from hilbert_pipeline.pipelines.tuning.nodes import tune_node


def create_pipeline(**kwargs) -> Pipeline:
    return documents_pipeline() + Pipeline([
        Node(tune_node,
             inputs=["training_documents", "training_labels", "params:tuning",
                     "params:training", "params:cluster"],
             outputs=["best_params", "tuning_summary", "tuning_trials",
                      "tuning_history_plot", "tuning_importance_plot"],
             name="tune_hilbert"),
    ])
