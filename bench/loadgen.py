"""A lean HTTP/1.1 load generator for the benchmarks.

Requests are encoded before the clock starts and sent over keep-alive connections with
plain asyncio streams. aiohttp's client spends about as much CPU per request as the
server under test, and both share the same 2 cores, so with it a good part of every
measured latency was the client queueing behind itself.

Latency is measured from the moment a request was due (open loop) or sent (closed loop)
to the last byte of its response.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

REQUEST_TIMEOUT = 30.0


def encode_post(url: str, headers: dict[str, str], body: bytes) -> bytes:
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Outcome:
    index: int
    status: int  # 0: no answer (connection refused, reset or timed out)
    seconds: float


class Connection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> int:
        """The response's status; any failure drops the connection and answers 0."""
        try:
            return await asyncio.wait_for(self._exchange(raw), REQUEST_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            self.close()
            return 0

    async def _exchange(self, raw: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        if fields.get(b"transfer-encoding") == b"chunked":
            while size := int(await self._reader.readuntil(b"\r\n"), 16):
                await self._reader.readexactly(size + 2)
            await self._reader.readuntil(b"\r\n")
        elif length := int(fields.get(b"content-length", 0)):
            await self._reader.readexactly(length)
        if fields.get(b"connection") == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def closed_loop(url: str, requests: list[bytes], concurrency: int) -> list[Outcome]:
    """`concurrency` connections, each sending its next request as soon as it is answered."""
    pending = iter(enumerate(requests))
    outcomes: list[Outcome] = []

    async def worker() -> None:
        connection = Connection(url)
        for index, raw in pending:
            started = time.monotonic()
            status = await connection.send(raw)
            outcomes.append(Outcome(index, status, time.monotonic() - started))
        connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def open_loop(
    url: str, requests: list[bytes], rate: float, max_connections: int = 64
) -> tuple[list[Outcome], float]:
    """Request n is due at n / rate seconds; it waits for a free connection if all are
    busy, and that wait counts in its latency. Returns the outcomes and the time taken."""
    due: asyncio.Queue[tuple[int, bytes, float] | None] = asyncio.Queue()
    outcomes: list[Outcome] = []

    async def worker() -> None:
        connection = Connection(url)
        while (item := await due.get()) is not None:
            index, raw, due_at = item
            status = await connection.send(raw)
            outcomes.append(Outcome(index, status, time.monotonic() - due_at))
        connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(max_connections)]
    start = time.monotonic()
    for index, raw in enumerate(requests):
        due_at = start + index / rate
        delay = due_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait((index, raw, due_at))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    return outcomes, time.monotonic() - start
