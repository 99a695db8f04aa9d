"""I/O: settings, the S3 client, object stores, the Parquet warehouse, publishing, caches,
and the detector dispatch (local process pool or Modal). No Dagster imports.
"""
