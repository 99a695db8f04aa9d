"""Pure logic: clustering, selection, checks, images, tables, ids, manifests, sensor planning.

Nothing here imports Dagster, boto3, FastAPI or Modal, so all of it is tested directly.
"""
