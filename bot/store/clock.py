"""The database's clock, for state several replicas compare (leases, the request budget):
hosts' clocks may disagree, the database's is one."""

from __future__ import annotations

from sqlalchemy import Double, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

UNIX_EPOCH_JULIAN_DAY = 2440587.5


def database_now(dialect: str) -> ColumnElement[float]:
    """Seconds since the epoch, as a float, read by the database when the statement runs."""
    if dialect == "postgresql":
        # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
        return cast(func.extract("epoch", func.clock_timestamp()), Double)
    # SQLite: julianday('now') has millisecond precision.
    return (func.julianday("now") - literal(UNIX_EPOCH_JULIAN_DAY)) * literal(86400.0)
