"""Domain errors: each is a refusal with a message fit for a coordinator's screen."""


class DomainError(Exception):
    """Base of every refusal; nothing has been written when it is raised."""


class NotFound(DomainError):
    pass


class IllegalTransition(DomainError):
    pass


class ConsentMissing(DomainError):
    pass


class Conflict(DomainError):
    """Someone else changed the record first (optimistic locking), or a duplicate exists."""
