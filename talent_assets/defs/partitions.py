"""One dynamic partition per video; the key is the video id (see ``video_id.py``)."""

from dagster import DynamicPartitionsDefinition

videos_partitions = DynamicPartitionsDefinition(name="videos")
