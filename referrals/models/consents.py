"""How a client's consent was given, in a module of its own: the CLI offers these values
without loading the ORM (models/people.py, which records consents, re-exports it)."""

from enum import StrEnum


class ConsentMethod(StrEnum):
    written = "written"
    verbal = "verbal"
