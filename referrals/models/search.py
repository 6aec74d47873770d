"""The client search index: keyed hashes of the words of each client's name.

A name is sealed per client (models/people.py, infra/crypto.py) and cannot be searched in SQL.
Each word of it, folded to plain lower-case letters ("Nguyễn" -> "nguyen", "Đặng" -> "dang"),
is stored here as HMAC-SHA256 under a key derived from the office's secret: a search hashes the
words typed and asks for the clients holding all of them. A copy of the database without the
secret holds no word of any name; what it does show (README.md, "Finding a client") is which
clients share a word and how many words a name has.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class ClientTerm(SQLModel, table=True):
    """One word of one client's name, as its keyed hash; (term, client) is the key, so a lookup
    by term is an index range and a client holds each word once."""

    __tablename__ = "client_term"

    term: str = Field(primary_key=True, max_length=64)
    client_id: int = Field(foreign_key="client.id", primary_key=True, index=True)
