"""Failures caused by the input, not by the machinery: clear, one line, never retried.

Each carries an ``error_kind`` in its metadata so callers (the CLI, the HTTP API) can tell a
missing object (404) from a file that is not a video (422) without parsing messages.
"""

from __future__ import annotations

from typing import Literal

from dagster import Failure

# "unreachable_source": a video URL that could not be fetched (HTTP error, timeout, size).
ErrorKind = Literal[
    "missing_object", "invalid_video", "bad_request", "out_of_date", "unreachable_source"
]
ERROR_KIND_KEY = "error_kind"


def input_failure(message: str, kind: ErrorKind) -> Failure:
    """A non-retryable Dagster ``Failure`` with a one-line description and its kind."""
    return Failure(
        description=message.splitlines()[0] if message else kind,
        metadata={ERROR_KIND_KEY: kind},
        allow_retries=False,
    )
