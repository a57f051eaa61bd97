"""``training``: segment features + documents → ``hilbert_model`` checkpoint, curves, summary."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.training.nodes import train_model_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_model_node,
             inputs=["segment_features", "documents", "params:training",
                     "params:classes.label_map", "params:classes.min_class_size",
                     "params:segmentation"],
             outputs=["hilbert_model", "training_history", "training_curves",
                      "training_summary"],
             name="train_hilbert"),
    ])
