"""Request bodies of the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProcessRequest(BaseModel):
    """Body of ``POST /process``: ``{"bucket", "key"}`` of an S3 object, or ``{"url"}`` of a
    video file or HLS playlist; optionally ``webhook_url``, called when the run ends.

    Strict and closed: ``"wait": "no"`` or a misspelt ``"wiat"`` is a 400, not a silently
    ignored option that leaves a client waiting for a run it meant to poll.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    bucket: str | None = Field(default=None, min_length=1, max_length=255)
    key: str | None = Field(default=None, min_length=1, max_length=1024)
    url: str | None = Field(default=None, min_length=1, max_length=4096)
    webhook_url: str | None = Field(default=None, min_length=1, max_length=4096)
    wait: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ProcessRequest:
        if self.url is not None and (self.bucket is not None or self.key is not None):
            raise ValueError("give either url or bucket and key, not both")
        if self.url is None and (self.bucket is None or self.key is None):
            raise ValueError("give bucket and key (an S3 object) or url")
        return self
