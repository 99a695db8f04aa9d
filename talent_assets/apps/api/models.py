"""Request bodies of the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProcessRequest(BaseModel):
    """Body of ``POST /process``.

    Strict and closed: ``"wait": "no"`` or a misspelt ``"wiat"`` is a 400, not a silently
    ignored option that leaves a client waiting for a run it meant to poll.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    bucket: str = Field(min_length=1, max_length=255)
    key: str = Field(min_length=1, max_length=1024)
    wait: bool = True
