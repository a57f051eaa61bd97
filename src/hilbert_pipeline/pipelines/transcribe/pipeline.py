"""``transcribe``: Whisper transcripts for the corpus's recordings that have none. The
segmentation and inference pipelines start with the same node, so `kedro run` transcribes first
when needed; run it alone to check the transcripts before segmenting."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.transcribe.nodes import transcribe_node


def transcribe_node_for(report: str, name: str) -> Node:
    """The transcribe node writing its report to the dataset ``report``."""
    return Node(transcribe_node, inputs=["params:corpus", "params:transcribe", "params:cluster"],
                outputs=report, name=name)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([transcribe_node_for("transcription_report", "transcribe")])
