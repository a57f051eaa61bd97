"""Project CLI: Kedro's own ``kedro run``, printing the project's user errors as one block.

Kedro loads ``<package>.cli`` and lets its commands override the built-in ones. ``run`` keeps
every option of Kedro's command; only a failure caused by a user-facing error
(:mod:`hilbert_pipeline.errors`) changes: its message alone on stderr, exit status 1, no
traceback (``HILBERT_DEBUG=1`` restores it). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import click
from kedro.framework.cli.project import run as kedro_run

from hilbert_pipeline.errors import (
    debug,
    missing_input,
    missing_input_message,
    user_error,
    user_message,
)


class _HideUserErrors(logging.Filter):
    """Drops Kedro's "node failed" record when the failure is a user error: its message is
    printed once, by the command, instead of twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = sys.exc_info()[1]
        return debug() or exc is None or (user_error(exc) is None and missing_input(exc) is None)


class _RunCommand(click.Command):
    def invoke(self, ctx: click.Context):
        hide = _HideUserErrors()
        for name in ("kedro.pipeline.node", "kedro.runner", "kedro.runner.sequential_runner",
                     "kedro.runner.parallel_runner", "kedro.runner.thread_runner",
                     "kedro.framework.session.session"):
            logging.getLogger(name).addFilter(hide)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            err, missing = user_error(exc), missing_input(exc)
            if (err is None and missing is None) or debug():
                raise
            logging.shutdown()
            click.echo(user_message(err) if err is not None else missing_input_message(*missing),
                       err=True)
            ctx.exit(1)


@click.group(name="hilbert_pipeline")
def cli() -> None:
    """Project commands."""


cli.add_command(_RunCommand(name="run", params=kedro_run.params, callback=kedro_run.callback,
                            help=kedro_run.help, short_help=kedro_run.short_help))
