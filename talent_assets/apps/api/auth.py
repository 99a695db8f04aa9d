"""The API key check: ``Authorization: Bearer <key>`` on every path but the open ones."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from talent_assets.apps.api.errors import error_response

OPEN_PATHS = frozenset({"/healthz"})  # reachable without the key (load balancers, Modal)


class BearerAuth:
    """ASGI middleware: every path except ``OPEN_PATHS`` needs ``Authorization: Bearer <key>``.

    Middleware rather than a FastAPI dependency so the key is checked before anything else
    (body parsing, routing): an unauthenticated caller learns nothing, not even that its JSON
    was malformed or a path does not exist.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], *, api_key: str):
        self.app = app
        self._key = api_key.encode()

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        value = next((v for k, v in headers if k.lower() == b"authorization"), b"")
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        # Constant time, so response timing does not reveal how much of a guess was right.
        return hmac.compare_digest(token.strip(), self._key)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        """Pass authorised (or open, or non-HTTP) requests on; answer the rest with a 401."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        # Behind a mount or proxy prefix the open paths are still matched without it.
        if root and path.startswith(root):
            path = path[len(root) :]
        if path in OPEN_PATHS or self._authorized(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)
