"""Sentences of the tiny real (espeak-ng) corpora of the end-to-end and inference tests: three
topics, three sentences each. A plain module (tests/ is on pytest's pythonpath)."""

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
