"""The four partitioned assets (one module each) and the registry across videos."""

from talent_assets.defs.assets.face_detections import face_detections
from talent_assets.defs.assets.identity_clusters import identity_clusters
from talent_assets.defs.assets.raw_video import raw_video
from talent_assets.defs.assets.selected_frames import selected_frames
from talent_assets.defs.assets.talent_registry import talent_registry

#: The four assets of one video partition (the ``process_video`` job).
ALL_ASSETS = [raw_video, face_detections, identity_clusters, selected_frames]

__all__ = [
    "ALL_ASSETS",
    "face_detections",
    "identity_clusters",
    "raw_video",
    "selected_frames",
    "talent_registry",
]
