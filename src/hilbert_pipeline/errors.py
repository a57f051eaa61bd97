"""User mistakes vs bugs: which exceptions are the project's own messages to its user.

A corpus that fails validation, parameters that do not fit, a missing local model folder, a
checkpoint that does not match: each raises a subclass of :class:`UserError` with a message
that says what is wrong, where, and what to do. ``kedro run`` (``hilbert_pipeline.cli``) prints
that message alone and exits non-zero; a traceback is printed only for other exceptions (bugs) or when
``HILBERT_DEBUG=1``.
"""

from __future__ import annotations

import os


class UserError(ValueError):
    """A mistake of the user's (a corpus, a parameter, a file, a model folder): its message says
    what is wrong, where, and what to do. Every user-facing error class of the project derives
    from it; ``kedro run`` prints such an error alone, without a traceback."""


def user_error(exc: BaseException) -> BaseException | None:
    """The project's own user-facing error in ``exc`` or its causes, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def debug() -> bool:
    """``HILBERT_DEBUG=1``: show tracebacks of user errors too."""
    return os.environ.get("HILBERT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def user_message(exc: BaseException) -> str:
    """The block printed for a user error: the message, then how to see more."""
    return (f"Error: {exc}\n(the run stopped at this step; set HILBERT_DEBUG=1 to see the "
            "traceback)")


#: the order in which the pipelines feed each other (a missing input names the ones to run)
PIPELINE_ORDER = ("demo_data", "segmentation", "embedding", "training", "tuning", "evaluation",
                  "inference")


def missing_input(exc: BaseException) -> tuple[str, str] | None:
    """``(dataset name, path)`` when ``exc`` (or a cause) is Kedro's failure to load a dataset
    whose file does not exist, else None."""
    import re

    name = path = None
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        m = re.match(r"(\w+): Failed while loading data", str(exc))
        if m and name is None:
            name = m.group(1)
        if isinstance(exc, FileNotFoundError):
            path = exc.filename or str(exc)
        exc = exc.__cause__ or exc.__context__
    return (name, str(path)) if name and path else None


def missing_input_message(name: str, path: str, pipelines: dict | None = None) -> str:
    """One block: which input is missing, which pipeline writes it and what to run first."""
    if pipelines is None:  # every pipeline (a run loads only those it asks for)
        import importlib

        pipelines = {}
        for k in PIPELINE_ORDER:
            try:
                module = importlib.import_module(f"hilbert_pipeline.pipelines.{k}")
                pipelines[k] = module.create_pipeline()
            except Exception:  # noqa: BLE001 - the message stays useful without that pipeline
                continue
    producers = [k for k in PIPELINE_ORDER if k in pipelines and name in
                 pipelines[k].all_outputs()]
    text = f"Error: the input `{name}` is missing ({path} does not exist)."
    if producers:
        from hilbert_pipeline.pipeline_registry import DEFAULT_CHAIN

        chain = _chain(producers[0], pipelines)
        text += (f"\nIt is written by the `{producers[0]}` pipeline: run "
                 f"`kedro run --pipelines {','.join(chain)}` first, or plain `kedro run` "
                 f"({', '.join(DEFAULT_CHAIN)}).")
    return text + "\n(set HILBERT_DEBUG=1 to see the traceback)"


def _chain(target: str, pipelines: dict) -> list[str]:
    """``target`` and the pipelines before it that write its free inputs, in run order (the
    demo corpus is left out: it is an input the user chooses)."""
    need, todo = {target}, [target]
    while todo:
        p = pipelines[todo.pop()]
        for ds in p.inputs():
            for k in PIPELINE_ORDER:
                if k not in need and k in pipelines and k != "demo_data" and \
                        ds in pipelines[k].all_outputs():
                    need.add(k)
                    todo.append(k)
    return [k for k in PIPELINE_ORDER if k in need]
