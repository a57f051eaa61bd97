"""``embedding``: ``segments`` -> ``segment_features`` + ``embedding_summary``."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.embedding.nodes import embed_segments_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(embed_segments_node, inputs=["segments", "params:embedding", "params:cluster"],
             outputs=["segment_features", "embedding_summary"], name="embed_segments"),
    ])
