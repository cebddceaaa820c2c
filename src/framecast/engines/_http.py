"""What every HTTP-streaming engine shares: an ``httpx2`` client it owns or borrows."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import httpx2

__all__ = ["HttpEngine"]


class HttpEngine:
    """Base of engines that stream over HTTP (ElevenLabs, the remote TTS service).

    Args:
        http_client: a client to share; when None the engine creates one and closes it
            in :meth:`aclose`.
        connect_timeout_s: longest wait for a connection (own client only).
        read_timeout_s: longest wait between two pieces of a body (own client only).
    """

    def __init__(
        self,
        http_client: httpx2.AsyncClient | None,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        # Imported here so that importing framecast.engines does not need httpx2.
        import httpx2

        self._transport_error = httpx2.TransportError
        self._owns_client = http_client is None
        self._client = http_client or httpx2.AsyncClient(
            timeout=httpx2.Timeout(read_timeout_s, connect=connect_timeout_s)
        )

    async def aclose(self) -> None:
        """Close the HTTP client if the engine created it; idempotent."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
