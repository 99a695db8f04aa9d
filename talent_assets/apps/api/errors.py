"""How the API answers errors: always JSON ``{"error": "<one line>", ...}``, never a traceback.

One home for the error type the endpoints raise, the response helper, and the mappings from
other failures (a bad body, an object store error, a failed run's error kind) to a status.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

# HTTP status for a failed run, by the failure's error kind (talent_assets/defs/failures.py).
# Anything else ("out_of_date", "internal") is our fault, not the caller's: 500.
STATUS_BY_ERROR_KIND = {
    "missing_object": 404,
    "invalid_video": 422,
    "bad_request": 400,
    "unreachable_source": 502,  # the video URL's server failed us: a bad gateway
}


class ApiError(Exception):
    """An error answered as ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def one_line(text: object, limit: int = 500) -> str:
    """First non-empty line of ``text``, bounded: errors are one line by contract."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The JSON error answer: ``{"error": <first line of message>, **extra}``."""
    return JSONResponse(
        {"error": one_line(message) or "error", **extra}, status_code=status, headers=headers
    )


def status_for_error_kind(error_kind: str) -> int:
    """HTTP status of a failed run: the caller's fault (4xx) by kind, otherwise 500."""
    return STATUS_BY_ERROR_KIND.get(error_kind, 500)


def validation_message(exc: RequestValidationError) -> str:
    """One line naming the first problem with the body (FastAPI's 422 detail, condensed)."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) if loc else "body"
    return f"invalid request: {where}: {first.get('msg', 'invalid value')}"


def storage_error(err: Exception) -> ApiError:
    """A 502 for an object store that failed or could not be reached."""
    # Only the S3 error code: messages can carry request details we do not want to echo.
    code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
    log.warning("object store error: %s", type(err).__name__, exc_info=True)
    suffix = f" ({code})" if code else ""
    return ApiError(502, f"the object store could not be reached{suffix}")
