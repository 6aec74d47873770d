"""Domain errors: each is a refusal with a message fit for a coordinator's screen.

The message is English (CLI, API, logs). A refusal a coordinator meets on the web pages also
carries a `key` and its `params`, so the pages can say it in Vietnamese (web/words.py).
"""

from typing import Any


class DomainError(Exception):
    """Base of every refusal; nothing has been written when it is raised."""

    def __init__(self, message: str, *, key: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.key, self.params = key, params


class NotFound(DomainError):
    pass


class IllegalTransition(DomainError):
    pass


class ConsentMissing(DomainError):
    pass


class Conflict(DomainError):
    """Someone else changed the record first (optimistic locking), or a duplicate exists."""
