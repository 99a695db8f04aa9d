"""Representative frames between ``face_detections`` and ``selected_frames``: one object.

``face_detections`` stages the chosen frames (JPEGs and times) as a single Parquet object in
the video's output folder, ``<folder>.staging/representative_frames.parquet``, before it
writes its table. One PUT replaces it whole, so a re-run replaces the frames and a failed
run never leaves half a set; publishing copies nothing from it until ``selected_frames``
publishes ``frame_<nn>.jpg`` with the person frames (``infra.publish``). It stays staged
(``selected_frames`` can be re-run alone, e.g. with new selection settings), and names the
run that staged it, which ``selected_frames`` checks against the run of the
``face_detections`` materialisation it builds on.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.infra.publish import STAGING
from talent_assets.infra.storage import ObjectStore

STAGED_NAME = "representative_frames.parquet"


def staged_key(folder: str) -> str:
    """Where a video's representative frames wait to be published."""
    return f"{folder}{STAGING}{STAGED_NAME}"


def stage_representative(store: ObjectStore, folder: str, table: pa.Table) -> str:
    """Replace the staged frames of the video in ``folder`` with ``table`` (one PUT)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    key = staged_key(folder)
    store.put_bytes(key, sink.getvalue(), "application/vnd.apache.parquet")
    return key


def read_staged(store: ObjectStore, folder: str) -> pa.Table | None:
    """The staged frames, or None when none are staged."""
    try:
        data = store.get_bytes(staged_key(folder))
    except ObjectNotFoundError:
        return None
    return pq.read_table(io.BytesIO(data))


def unstage(store: ObjectStore, folder: str) -> None:
    """Remove the staged frames (representative frames turned off)."""
    store.delete([staged_key(folder)])
