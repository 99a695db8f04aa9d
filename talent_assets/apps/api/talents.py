"""The registry over HTTP: ``GET /talents``, ``GET /talents/{id}``, ``POST /talents/enroll``
(multipart photos), ``POST /talents/{id}/name``, ``DELETE /talents/{id}`` (forget).

Also ``POST /talents/{id}/merge``. All behind the bearer key like every route but
``/healthz``; the work is ``infra/curation``'s, run in a worker thread. Errors are the API's
one-line JSON: 404 no such talent, 409 a merge of two people seen together or an enrolment
matching a talent named otherwise, 422 a photo without one clear face or photos of different
people, 400 a bad name or body, 503 the registry is busy (with ``Retry-After``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from talent_assets.apps.api.errors import ApiError
from talent_assets.infra.curation import (
    CurationError,
    Registry,
    enrol_talent,
    forget_talent,
    list_talents,
    merge_talents,
    name_talent,
    talent_detail,
    talent_summary,
)
from talent_assets.infra.enrolment import EnrolmentError, photo_face
from talent_assets.infra.registry_lock import RegistryBusyError, RegistryLeaseLostError
from talent_assets.infra.settings import Settings

MAX_PHOTOS = 10
MAX_PHOTO_BYTES = 15 * 1024 * 1024
STATUS_BY_KIND = {"not_found": 404, "conflict": 409, "bad_request": 400}
ACTOR = "api"


class NameRequest(BaseModel):
    """Body of ``POST /talents/{id}/name``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)


class MergeRequest(BaseModel):
    """Body of ``POST /talents/{id}/merge``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    other_talent_id: str = Field(min_length=1, max_length=40)


def add_talent_routes(app: FastAPI, settings: Settings) -> None:
    """Register the registry's routes on ``app``."""

    def registry() -> Registry:
        return Registry.for_settings(settings)

    @app.get("/talents")
    async def talents() -> dict[str, Any]:
        """Every talent: id, name, videos, screen time."""
        rows = await _call(list_talents, registry())
        return {"talents": [talent_summary(t) for t in rows]}

    @app.get("/talents/{talent_id}")
    async def talent(talent_id: str) -> dict[str, Any]:
        """One talent with its videos, frames (with links) and times."""
        reg = registry()
        detail = await _call(talent_detail, reg, talent_id)
        return _detail_json(detail, reg)

    @app.post("/talents/{talent_id}/name")
    async def name(talent_id: str, body: NameRequest) -> dict[str, Any]:
        """Name a talent; every manifest it appears in follows."""
        named = await _call(name_talent, registry(), talent_id, body.name, ACTOR)
        return {"talent_id": named, "name": " ".join(body.name.split())}

    @app.post("/talents/enroll", status_code=201)
    async def enroll(
        name: Annotated[str, Form(min_length=1, max_length=200)],
        photos: Annotated[list[UploadFile], File()],
    ) -> dict[str, Any]:
        """Enrol a named talent from photos of one person (multipart: ``name``, ``photos``)."""
        faces = [await _photo_face(p, settings.model_pack) for p in _bounded(photos)]
        talent_id = await _call(enrol_talent, registry(), name, faces, ACTOR)
        return {"talent_id": talent_id, "name": " ".join(name.split()), "photos": len(faces)}

    @app.post("/talents/{talent_id}/merge")
    async def merge(talent_id: str, body: MergeRequest) -> dict[str, Any]:
        """Merge ``other_talent_id`` into this talent for good; 409 if they are ever on
        screen together."""
        kept = await _call(merge_talents, registry(), talent_id, body.other_talent_id, ACTOR)
        return {"talent_id": kept, "merged": body.other_talent_id}

    @app.delete("/talents/{talent_id}")
    async def forget(talent_id: str) -> dict[str, Any]:
        """Erase a talent everywhere (docs/design.md, "Erasure")."""
        forgotten, erased = await _call(forget_talent, registry(), talent_id, ACTOR)
        return {
            "talent_id": forgotten,
            "videos": len(erased),
            "people": sum(e.people for e in erased),
            "images_deleted": sum(e.files for e in erased),
            "frames_hidden": sum(e.frames_hidden for e in erased),
        }


def _bounded(photos: list[UploadFile]) -> list[UploadFile]:
    if not photos:
        raise ApiError(400, "enrolment needs at least one photo")
    if len(photos) > MAX_PHOTOS:
        raise ApiError(400, f"at most {MAX_PHOTOS} photos per enrolment")
    return photos


async def _photo_face(photo: UploadFile, model_pack: str) -> Any:
    data = await photo.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(413, f"{photo.filename}: larger than {MAX_PHOTO_BYTES // 2**20} MiB")
    return await _call(photo_face, photo.filename or "photo", data, model_pack)


async def _call(function: Any, *args: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args)
    except EnrolmentError as err:
        raise ApiError(422, str(err)) from None
    except CurationError as err:
        raise ApiError(STATUS_BY_KIND.get(err.kind, 400), str(err)) from None
    except (RegistryBusyError, RegistryLeaseLostError) as err:
        # Another writer holds the registry (a long forget, say): try again later.
        raise ApiError(503, str(err), headers={"Retry-After": "30"}) from None


def _detail_json(detail: dict[str, Any], registry: Registry) -> dict[str, Any]:
    appearances = [
        {
            "video_id": a["video_id"],
            "person_id": a["person_id"],
            "similarity": a["similarity"],
            "screen_time_s": a["screen_time_s"],
            "timestamp": a["timestamp_s"],
            "score": a["score"],
            "s3_key": a["s3_key"],
            "s3_url": registry.outputs.url(a["s3_key"]),
            "face_s3_key": a["face_s3_key"],
            "ingested_at": a["ingested_at"].isoformat(),
        }
        for a in detail["appearances"]
    ]
    return {**talent_summary(detail), "appearances": appearances}
