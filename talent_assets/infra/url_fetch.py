"""HTTP(S) requests to URLs users give us (videos to fetch, webhooks to call), SSRF-guarded.

Every hop is checked by :mod:`talent_assets.core.url_policy` after DNS resolution, and the
connection goes to the very address that was checked (the TLS certificate is still verified
against the host name), so DNS rebinding between the check and the connection is no way
round the guard. Redirects are followed by hand, each one checked again, at most
``max_redirects``. Limits on size and time end a transfer with a one-line
:class:`UrlFetchError`.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from talent_assets.core.url_policy import (
    UrlAllowList,
    UrlRefusedError,
    UrlTarget,
    check_addresses,
    display_url,
    split_url,
)

__all__ = ["FetchLimits", "UrlFetchError", "UrlRefusedError", "download", "open_url", "post"]

REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 1 << 20
USER_AGENT = "video-talent-extractor/0.1"


class UrlFetchError(RuntimeError):
    """A fetch that failed: HTTP error, timeout, too large, too many redirects."""


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one fetch."""

    max_bytes: int = 2 << 30
    timeout_s: float = 600.0  # the whole transfer, redirects included
    max_redirects: int = 5
    socket_timeout_s: float = 30.0  # one connect or read


@dataclass(frozen=True)
class Downloaded:
    """A finished download: where it came from in the end, and what the server said."""

    final_url: str
    content_type: str
    size: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand, whatever DNS says now."""

    def __init__(self, target: UrlTarget, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address; the certificate is verified for the URL's host name."""

    def __init__(self, target: UrlTarget, address: str, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def _connect(url: str, allow: UrlAllowList, timeout_s: float) -> tuple[UrlTarget, Any]:
    target = split_url(url)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UrlFetchError(f"{target.host}: no such host") from None
    address = check_addresses(target.host, [str(i[4][0]) for i in infos], allow)
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    return target, kind(target, str(address), timeout_s)


def open_url(
    url: str,
    allow: UrlAllowList,
    limits: FetchLimits,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, http.client.HTTPResponse]:
    """(final URL, open response) after following redirects; an HTTP error status raises."""
    deadline = time.monotonic() + limits.timeout_s
    for _ in range(limits.max_redirects + 1):
        target, connection = _connect(url, allow, _remaining(deadline, limits, url))
        try:
            sent = {"User-Agent": USER_AGENT, **(headers or {})}
            connection.request(method, target.path, body=body, headers=sent)
            response = connection.getresponse()
        except TimeoutError:
            connection.close()
            raise UrlFetchError(f"{display_url(url)}: timed out") from None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise UrlFetchError(f"{display_url(url)}: {type(error).__name__}: {error}") from None
        location = response.getheader("Location")
        if response.status in REDIRECTS and location:
            response.close()
            connection.close()
            url = urljoin(url, location)
            if response.status == 303:
                method, body = "GET", None
            continue
        if response.status >= 400:
            response.close()
            connection.close()
            raise UrlFetchError(f"{display_url(url)}: HTTP {response.status} {response.reason}")
        return url, response
    raise UrlFetchError(f"{display_url(url)}: more than {limits.max_redirects} redirects")


def download(url: str, destination: Path, allow: UrlAllowList, limits: FetchLimits) -> Downloaded:
    """Stream ``url`` into ``destination`` within the limits; a partial file is removed."""
    deadline = time.monotonic() + limits.timeout_s
    final_url, response = open_url(url, allow, limits)
    size = 0
    try:
        declared = response.getheader("Content-Length")
        too_large = f"{display_url(url)}: larger than {_megabytes(limits.max_bytes)}"
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise UrlFetchError(too_large)
        with destination.open("wb") as out:
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise UrlFetchError(too_large)
                _remaining(deadline, limits, url)
                out.write(chunk)
    except TimeoutError:
        destination.unlink(missing_ok=True)
        raise UrlFetchError(f"{display_url(url)}: timed out") from None
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    finally:
        response.close()
    return Downloaded(final_url, response.getheader("Content-Type") or "", size)


def read_text(url: str, allow: UrlAllowList, limits: FetchLimits) -> tuple[str, str]:
    """(final URL, body as text) of a small document such as an HLS playlist."""
    final_url, response = open_url(url, allow, limits)
    try:
        data = response.read(limits.max_bytes + 1)
    except TimeoutError:
        raise UrlFetchError(f"{display_url(url)}: timed out") from None
    finally:
        response.close()
    if len(data) > limits.max_bytes:
        raise UrlFetchError(f"{display_url(url)}: larger than {_megabytes(limits.max_bytes)}")
    return final_url, data.decode("utf-8", errors="replace")


def post(
    url: str, body: bytes, headers: dict[str, str], allow: UrlAllowList, timeout_s: float
) -> int:
    """POST ``body`` without following redirects; returns the HTTP status (errors included)."""
    target, connection = _connect(url, allow, timeout_s)
    try:
        connection.request(
            "POST", target.path, body=body, headers={"User-Agent": USER_AGENT, **headers}
        )
        response = connection.getresponse()
        response.read(64 << 10)
        return response.status
    except TimeoutError:
        raise UrlFetchError(f"{display_url(url)}: timed out after {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as error:
        raise UrlFetchError(f"{display_url(url)}: {error.__class__.__name__}: {error}") from None
    finally:
        connection.close()


def _remaining(deadline: float, limits: FetchLimits, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlFetchError(f"{display_url(url)}: timed out after {limits.timeout_s:g} s")
    return min(left, limits.socket_timeout_s)


def _megabytes(count: int) -> str:
    return f"{count / (1 << 20):g} MB"
