"""Faces from enrolment photos: one clear face per photo, embedded like the video faces.

Runs the same engine as detection (``modal_gpu.fanout.cached_engine``, in this process on
the CPU): a handful of photos take a second or two, so enrolment never needs the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modal_gpu.fanout import cached_engine
from modal_gpu.video import SampledFrame
from talent_assets.core.images import decode_image

#: A photo must show one face clearly larger than any other: the second largest face may be
#: at most this fraction of the largest's area (a group photo names nobody).
SECOND_FACE_MAX_AREA = 0.35
#: Photos whose face scores below this quality (0-100) are refused: too blurred or too small
#: to name anyone by.
MIN_PHOTO_QUALITY = 35.0


class EnrolmentError(ValueError):
    """A photo that cannot enrol anyone; the message names the photo and why (one line)."""


@dataclass(frozen=True)
class PhotoFace:
    """The face of one enrolment photo."""

    photo: str
    embedding: np.ndarray
    face_quality: float


def photo_face(photo: str, data: bytes, model_pack: str) -> PhotoFace:
    """The one face of an enrolment photo; :class:`EnrolmentError` if there is not exactly
    one clear face."""
    image = decode_image(data)
    if image is None:
        raise EnrolmentError(f"{photo}: not an image (JPEG, PNG, ...)")
    faces = cached_engine(model_pack).analyse([SampledFrame(0, 0.0, image, 1.0)])
    if not faces:
        raise EnrolmentError(f"{photo}: no face found")
    areas = sorted(
        ((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]), i) for i, f in enumerate(faces)
    )
    largest = faces[areas[-1][1]]
    if len(areas) > 1 and areas[-2][0] > SECOND_FACE_MAX_AREA * areas[-1][0]:
        raise EnrolmentError(f"{photo}: {len(faces)} faces; enrol from a photo of one person")
    if largest.face_quality < MIN_PHOTO_QUALITY:
        raise EnrolmentError(
            f"{photo}: the face is too small or unclear (quality {largest.face_quality:.0f} "
            f"< {MIN_PHOTO_QUALITY:.0f})"
        )
    return PhotoFace(photo, np.asarray(largest.embedding, np.float32), float(largest.face_quality))


def check_one_person(faces: list[PhotoFace], threshold: float) -> None:
    """Refuse photos of different people: the photos must form one group in which each
    links to another at ``threshold`` (the cross-video match), else one name would join two
    people's talents."""
    if len(faces) < 2:
        return
    embeddings = np.stack([f.embedding for f in faces])
    linked = embeddings @ embeddings.T >= threshold
    reached, frontier = {0}, [0]
    while frontier:
        for j in np.flatnonzero(linked[frontier.pop()]):
            if int(j) not in reached:
                reached.add(int(j))
                frontier.append(int(j))
    apart = [f.photo for i, f in enumerate(faces) if i not in reached]
    if apart:
        raise EnrolmentError(
            f"{apart[0]}: not the same person as {faces[0].photo} (the photos must show one person)"
        )
