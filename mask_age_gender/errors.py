"""User mistakes: errors a command answers with their message alone, not a traceback.

A missing or malformed archive, pretrained weights out of reach, a run that cannot resume, a
checkpoint that does not fit: the message says what is wrong and what to do, so a stack trace
would only bury it. Each such error subclasses ``UserMistake`` where it is raised
(``ArchiveError`` in the archive reader, ``CheckpointMismatch`` in the inference engine, …).
``HYDRA_FULL_ERROR=1`` (as for Hydra's own errors) keeps the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import InstantiationException


class UserMistake(Exception):
    """An error whose message says what the user got wrong and what to do instead."""


def full_error() -> bool:
    """Whether ``HYDRA_FULL_ERROR=1`` asks for every traceback (Hydra reads it the same way)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def user_mistake(err: BaseException) -> BaseException | None:
    """The user mistake ``err`` is, or that Hydra's ``instantiate`` wrapped in it; None if
    none, or under ``HYDRA_FULL_ERROR=1``."""
    if isinstance(err, InstantiationException):
        err = err.__cause__ or err
    return err if isinstance(err, UserMistake) and not full_error() else None


@contextmanager
def mistakes_as_messages() -> Iterator[None]:
    """A user mistake raised inside ends the command with its message on stderr and exit
    status 1; any other error, or any error under ``HYDRA_FULL_ERROR=1``, goes on as raised."""
    try:
        yield
    except Exception as err:
        mistake = user_mistake(err)
        if mistake is None:
            raise
        print(f"error: {mistake}", file=sys.stderr, flush=True)
        sys.exit(1)
