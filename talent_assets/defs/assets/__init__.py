"""The four partitioned assets, one module each."""

from talent_assets.defs.assets.face_detections import face_detections
from talent_assets.defs.assets.identity_clusters import identity_clusters
from talent_assets.defs.assets.raw_video import raw_video
from talent_assets.defs.assets.selected_frames import selected_frames

ALL_ASSETS = [raw_video, face_detections, identity_clusters, selected_frames]

__all__ = ["ALL_ASSETS", "face_detections", "identity_clusters", "raw_video", "selected_frames"]
