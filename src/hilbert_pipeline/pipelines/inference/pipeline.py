"""``inference``: trained checkpoint + a corpus (labels optional) → predictions, explanations,
held-out metrics when the corpus is labelled, and a self-contained HTML report.

It reuses the segmentation and embedding nodes on its own datasets (``inference_*``), so the
training corpus's tables are never overwritten; the feature cache is shared.
"""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.embedding.nodes import embed_segments_node
from hilbert_pipeline.pipelines.inference.nodes import (
    load_model_node,
    predict_node,
    validate_inference_corpus_node,
)
from hilbert_pipeline.pipelines.segmentation.nodes import segment_corpus_node
from hilbert_pipeline.pipelines.transcribe.pipeline import transcribe_node_for


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(load_model_node,
             inputs=["params:inference", "params:segmentation", "params:embedding",
                     "params:classes.label_map"],
             outputs="inference_model", name="load_inference_model"),
        transcribe_node_for("inference_transcription_report", "transcribe_inference_corpus"),
        Node(validate_inference_corpus_node,
             inputs=["params:corpus", "params:segmentation", "params:inference",
                     "inference_model", "inference_transcription_report"],
             outputs="inference_validated_corpus", name="validate_inference_corpus"),
        Node(segment_corpus_node, inputs=["inference_validated_corpus", "params:segmentation"],
             outputs=["inference_segments", "inference_documents", "inference_corpus_report"],
             name="segment_inference_corpus"),
        Node(embed_segments_node, inputs=["inference_segments", "params:embedding", "params:cluster"],
             outputs=["inference_segment_features", "inference_embedding_summary"],
             name="embed_inference_segments"),
        Node(predict_node,
             inputs=["inference_model", "inference_segment_features", "inference_documents",
                     "inference_segments", "params:corpus", "params:inference",
                     "inference_corpus_report"],
             outputs=["predictions", "explanations", "inference_metrics", "inference_report"],
             name="predict_and_explain"),
    ])
