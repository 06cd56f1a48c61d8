"""What the API's services raise; :func:`kgrec.api.app.create_app` turns each into a JSON error response.

The services (:mod:`kgrec.api.serving`, :mod:`kgrec.api.catalog`) know nothing of HTTP: they raise these
:class:`~kgrec.errors.KgrecError` subclasses, and the exception handlers pick the status code.
"""

from __future__ import annotations

from kgrec.errors import KgrecError


class NoActiveRun(KgrecError):
    """No ModelRun is active, so there is nothing to serve (503)."""

    def __init__(self) -> None:
        super().__init__(
            "no active model run: train and write back a run, then activate it (kgrec.loaders.writeback)"
        )


class NotFound(KgrecError):
    """A user, item, entity or recommendation the request names does not exist (404)."""


class Conflict(KgrecError):
    """The request contradicts what the graph holds, like an item id that exists already (409)."""


class InvalidReference(KgrecError):
    """The body names things the graph does not know (422), each with its place in the body.

    Args:
        problems: ``(loc, message)`` pairs, ``loc`` like ``("body", "links", 0, "entity_id")``.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))
