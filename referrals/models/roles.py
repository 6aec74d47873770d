"""Staff roles, in a module of their own: the policy and the read-only CLI paths use them
without loading the ORM."""

from enum import StrEnum


class Role(StrEnum):
    coordinator = "coordinator"
    manager = "manager"
    admin = "admin"
