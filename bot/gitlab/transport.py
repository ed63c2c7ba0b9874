"""An httpx transport over aiohttp's connection pool.

httpx's own pool slows down sharply past ~10 concurrent requests; the monitor and
`status --refresh` fan out to dozens. The mapping of failures is exact, because what is
retried depends on it: refused connections never reached GitLab, dropped ones might have.
"""

from __future__ import annotations

import aiohttp
import httpx

_SKIPPED_REQUEST_HEADERS = {"content-length", "transfer-encoding"}


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that will use it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                auto_decompress=False,  # httpx decodes by Content-Encoding itself
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in _SKIPPED_REQUEST_HEADERS
        ]
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread(),
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=[(k.decode(), v.decode()) for k, v in response.raw_headers],
                    content=content,
                    request=request,
                )
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
            aiohttp.ClientResponseError,
        ) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
