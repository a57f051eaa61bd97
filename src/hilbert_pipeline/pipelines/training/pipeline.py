"""``training``: segment features + documents → the labelled documents and the resolved settings
(two datasets every consumer reads) → ``hilbert_model`` checkpoint, curves, summary."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.training.nodes import (
    train_model_node,
    training_documents_node,
    training_settings_node,
)


def settings_pipeline() -> Pipeline:
    """The one node that resolves the ``training`` parameters (shared with the evaluation
    pipeline: Kedro runs an identical node once)."""
    return Pipeline([Node(training_settings_node, inputs="params:training",
                          outputs="training_settings", name="resolve_training_settings")])


def documents_pipeline() -> Pipeline:
    """The one node that labels the training documents (shared with the tuning pipeline)."""
    return Pipeline([
        Node(training_documents_node,
             inputs=["segment_features", "documents", "params:classes.label_map",
                     "params:classes.min_class_size"],
             outputs=["training_documents", "training_labels"], name="label_training_documents"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    return settings_pipeline() + documents_pipeline() + Pipeline([
        Node(train_model_node,
             inputs=["training_documents", "training_labels", "training_settings",
                     "params:classes.label_map", "params:classes.min_class_size",
                     "params:segmentation"],
             outputs=["hilbert_model", "training_history", "training_curves",
                      "training_summary"],
             name="train_hilbert"),
    ])
