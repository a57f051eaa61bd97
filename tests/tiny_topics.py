"""The tiny real (espeak-ng) corpora of the end-to-end, notebook and inference tests: three topics,
three sentences each, and the small settings of a whole ``kedro run`` on them. A plain module
(tests/ is on pytest's pythonpath)."""

TOPICS = {
    "economy": ["Our markets and factories have grown this year.",
                "Taxes on working families must come down.",
                "Trade brings jobs to every state."],
    "defense": ["Our army and navy stand ready.",
                "We will defend our allies abroad.",
                "The soldiers deserve our thanks."],
    "science": ["New laboratories will study the stars.",
                "Medicine has cured old diseases.",
                "Schools must teach mathematics well."],
}


def tiny_documents() -> list[dict]:
    """12 documents, 4 per topic; the sentences rotate so documents of a class differ."""
    docs = []
    for k, (label, sentences) in enumerate(TOPICS.items()):
        for j in range(4):
            docs.append({"doc_id": f"{label}_{j}", "label": label,
                         "sentences": sentences[j % 3:] + sentences[:j % 3][: 1 + (k + j) % 2]})
    return docs


#: small settings for a whole `kedro run` on the tiny corpus (``--params``)
KEDRO_PARAMS = ",".join([
    "evaluation.n_splits=3",
    "evaluation.n_repeats=1",
    "evaluation.seed=7",
    "evaluation.progress=false",
    "evaluation.n_jobs=1",
    "training.progress=false",
    "training.model.d=16",
    "training.model.n_heads=2",
    "training.model.n_experts=2",
    "training.optim.epochs=3",
    "training.optim.batch_size=4",
    "training.optim.num_threads=1",
    "embedding.progress=false",
    "segmentation.progress=false",
])
