"""The database's clock, for state several replicas compare (leases, the request budget):
hosts' clocks may disagree, the database's is one."""

from __future__ import annotations

import time

from sqlalchemy import Double, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

UNIX_EPOCH_JULIAN_DAY = 2440587.5


def database_now(dialect: str) -> ColumnElement[float]:
    """Seconds since the epoch, as a float, read by the database when the statement runs."""
    if dialect == "postgresql":
        # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
        return cast(func.extract("epoch", func.clock_timestamp()), Double)
    # SQLite: julianday('now') has millisecond precision.
    return (func.julianday("now") - literal(UNIX_EPOCH_JULIAN_DAY)) * literal(86400.0)


# Claims and leases some rows hold (the outbox's, running approvals and rotations) are
# written with the host's clock and compared by other replicas': they last 90 s or more
# beyond the work they cover, so hosts a minute apart could take one another's work.
SKEW_WARNING_SECONDS = 10.0


async def clock_skew(engine: AsyncEngine) -> float:
    """The database's clock minus this host's, in seconds (the query's round trip halved
    either side): what replicas on hosts whose clocks disagree see of each other."""
    before = time.time()
    async with engine.connect() as connection:
        database = float(
            (await connection.execute(select(database_now(engine.dialect.name)))).scalar_one()
        )
    after = time.time()
    return database - (before + after) / 2
