"""``evaluation``: the labelled documents and their folds once → every method on the identical
folds (settings: the resolved ``training_settings``) → reports."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.evaluation.nodes import (
    evaluate_methods_node,
    make_folds_node,
    report_node,
)
from hilbert_pipeline.pipelines.training.pipeline import settings_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return settings_pipeline() + Pipeline([
        Node(make_folds_node, inputs=["segment_features", "documents", "params:evaluation",
                                      "params:classes"],
             outputs=["evaluation_documents", "evaluation_folds", "evaluation_labels"],
             name="make_evaluation_folds"),
        Node(evaluate_methods_node,
             inputs=["evaluation_documents", "evaluation_folds", "params:evaluation",
                     "training_settings", "params:cluster"],
             outputs=["evaluation_predictions", "fold_metrics", "gate_usage_folds",
                      "mi_estimates_folds"],
             name="evaluate_methods"),
        Node(report_node,
             inputs=["evaluation_predictions", "fold_metrics", "gate_usage_folds",
                     "mi_estimates_folds", "evaluation_labels", "params:evaluation",
                     "params:training"],
             outputs=["metrics", "headline_metrics", "per_class_metrics", "comparison_table",
                      "confusion_hilbert",
                      "confusion_best_baseline", "gate_usage", "mi_estimates"],
             name="report_evaluation"),
    ])
