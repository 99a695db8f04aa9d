"""Errors for the user: one line, never holding a secret.

DuckDB's messages span several lines (the statement with a caret, help bullets) and may echo
what they were given, S3 credentials included; everything :class:`QueryError` carries and
everything a query returns goes through :func:`one_line` and/or :func:`scrub` first.
"""

from __future__ import annotations

import os

# Environment variables whose values must never appear in anything we return or raise.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values are not scrubbed from outputs: replacing e.g. every "ab" would mangle data,
# and real secret keys (40 characters on AWS) are far longer.
_MIN_SCRUB_LEN = 8
_MAX_ERROR_LEN = 500


class QueryError(Exception):
    """A query could not be answered; the message is one line meant for the user."""


def one_line(err: BaseException) -> str:
    """DuckDB's message without the echoed SQL and the help bullets, on one line."""
    kept = []
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith("LINE "):  # the statement with a caret under the error
            break
        if line and not line.startswith(("*", "See https://")):
            kept.append(line)
    text = " ".join(kept) or type(err).__name__
    return text if len(text) <= _MAX_ERROR_LEN else text[: _MAX_ERROR_LEN - 1] + "…"


def scrub(text: str) -> str:
    """``text`` with the secret AWS values replaced by ``***``.

    Read from the environment at each call, like the S3 secret itself, so a value set after
    import is scrubbed too.
    """
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= _MIN_SCRUB_LEN:
            text = text.replace(value, "***")
    return text
