"""pydantic's first complaint as the one-line "where: what" every reader of input prints."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError) -> tuple[str, str]:
    """(dotted path, message) of the first error: ``("spec.region", "Input should be ...")``;
    the path is ``(document)`` for an error about the whole input."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "(document)"
    return where, str(error["msg"]).removeprefix("Value error, ")
