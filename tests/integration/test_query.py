"""``talent query``: the README's analyst queries through the real CLI, on real pipeline output.

Two copies of the scripted three-person clip go through the real Dagster assets into a
warehouse on the real S3 server; every ```sql block of the README's "Analysts' SQL" section
then runs as a subprocess (``talent query SQL --format json``) and its answer is checked
against what the pipeline wrote (the Parquet files, the manifests) and the clip's script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from talent_assets.apps.query import QueryError, connect, run_query
from talent_assets.apps.query.views import HIDDEN_COLUMNS, REGISTRY_TABLES
from talent_assets.core.tables import REGISTRY_SCHEMAS, TABLE_SCHEMAS
from talent_assets.infra.settings import Settings
from talent_assets.infra.warehouse import Warehouse
from tests.support import media
from tests.support.pipeline import manifest_of, run_key, store_for, upload

REPO = Path(__file__).resolve().parents[2]
TALENT = [sys.executable, "-m", "talent_assets.apps.cli"]
# The videos of this module live under their own keys and their own warehouse prefix in the
# session's shared bucket, so other tests' videos never show up in these answers (and the
# README's LIMIT can never cut ours off).
KEYS = ("videos/query-tests/first.mp4", "videos/query-tests/second.mp4")
WAREHOUSE_PREFIX = "query-tests/warehouse/"


def readme_queries() -> dict[str, str]:
    """The ```sql blocks of README's "## Analysts' SQL" section, by their ``-- title`` line."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Analysts' SQL\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    queries: dict[str, str] = {}
    for block in re.findall(r"^```sql\n(.*?)^```", section, flags=re.S | re.M):
        title = block.splitlines()[0].removeprefix("-- ").strip()
        assert block.startswith("-- ") and title not in queries, f"untitled or repeated: {block}"
        queries[title] = block
    return queries


README_QUERIES = readme_queries()


def talent_query(sql: str, fmt: str = "json") -> subprocess.CompletedProcess[str]:
    """``talent query`` as a user runs it; also asserts that no output carries the secret."""
    proc = subprocess.run(
        [*TALENT, "query", sql, "--format", fmt],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if secret:
        assert secret not in proc.stdout and secret not in proc.stderr
    return proc


def query_json(sql: str) -> list[dict[str, Any]]:
    proc = talent_query(sql, "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("talent: error: ")
    return lines[0]


# --------------------------------------------------------------------------- fixtures


@dataclass
class Processed:
    """The two processed videos and what the pipeline wrote for them."""

    settings: Settings
    truth: media.VideoTruth
    video_ids: list[str]
    manifests: dict[str, dict[str, Any]]  # by video_id
    tables: dict[str, dict[str, pa.Table]]  # table -> video_id -> rows

    def only_ours(self, rows: list[dict[str, Any]], column: str = "video_id") -> list[dict]:
        return [row for row in rows if row[column] in self.video_ids]


@pytest.fixture
def processed(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    three_person: tuple[Path, media.VideoTruth],
    monkeypatch: pytest.MonkeyPatch,
) -> Processed:
    """The three-person clip under two keys, through the real assets, once per session.

    The bucket lives as long as the session, so later tests find the videos already done
    (the manifest is published last: if it is there, the tables are too).
    """
    monkeypatch.setenv("TALENT_WAREHOUSE", f"s3://{talent_env.bucket}/{WAREHOUSE_PREFIX}")
    settings = Settings.from_env()
    path, truth = three_person
    video_ids, manifests = [], {}
    for key in KEYS:
        manifest = manifest_of(settings, key)
        if manifest is None:
            upload(settings, path, key)
            _, outcome = run_key(settings, dagster_instance, key)
            assert outcome.success, outcome.message
            manifest = manifest_of(settings, key)
            assert manifest is not None
        video_ids.append(manifest["video_id"])
        manifests[manifest["video_id"]] = manifest
    warehouse = Warehouse(store_for(settings), WAREHOUSE_PREFIX)
    tables = {name: {vid: warehouse.read(name, vid) for vid in video_ids} for name in TABLE_SCHEMAS}
    for name, parts in tables.items():
        assert all(part is not None for part in parts.values()), f"{name} not written"
    return Processed(settings, truth, video_ids, manifests, tables)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- README checks


def check_screen_time(rows: list[dict], p: Processed) -> None:
    ours = p.only_ours(rows)
    assert len(ours) == 6
    sample_times = np.arange(0, p.truth.duration_s, 1 / float(p.settings.sample_fps))
    for vid in p.video_ids:
        manifest = p.manifests[vid]
        people = [row for row in ours if row["video_id"] == vid]
        assert [row["person_id"] for row in people] == [0, 1, 2]  # ordered by person_id
        for row, result in zip(people, manifest["results"], strict=True):
            assert row["key"] == manifest["source"]["key"]
            assert row["screen_time_s"] == pytest.approx(result["screen_time"])
            assert row["first_seen_s"] == pytest.approx(result["first_seen"])
            assert row["last_seen_s"] == pytest.approx(result["last_seen"])
            # DuckDB rounds halves away from zero, Python to even: allow the last digit.
            assert row["pct_of_video"] == pytest.approx(
                100 * row["screen_time_s"] / manifest["video"]["duration_s"], abs=0.051
            )
            # Against the script: person n (first appearance order) is the clip's person n.
            # One sampling step of slack per end for the deliberately blurred tail.
            visible = sum(p.truth.visible_at(row["person_id"], t) for t in sample_times)
            assert abs(row["screen_time_s"] - visible / p.settings.sample_fps) <= 0.5 + 1e-9
        assert all(0 < row["screen_time_s"] <= p.truth.duration_s for row in people)


def check_faces_per_minute(rows: list[dict], p: Processed) -> None:
    ours = {row["video_id"]: row for row in p.only_ours(rows)}
    assert set(ours) == set(p.video_ids)
    for vid, row in ours.items():
        faces = p.tables["face_detections"][vid].num_rows
        duration = p.manifests[vid]["video"]["duration_s"]
        assert faces > 0
        assert row["faces"] == faces == p.manifests[vid]["metrics"]["faces_detected"]
        assert row["duration_s"] == pytest.approx(duration)
        assert row["faces_per_minute"] == pytest.approx(faces / (duration / 60), abs=0.05)
    values = [row["faces_per_minute"] for row in rows]
    assert values == sorted(values, reverse=True)


def check_similar_people(rows: list[dict], p: Processed) -> None:
    first, second = sorted(p.video_ids)  # the query pairs video_a < video_b
    ours = [r for r in rows if (r["video_a"], r["video_b"]) == (first, second)]
    assert len(ours) == 9  # 3 people x 3 people
    values = [r["similarity"] for r in rows]
    assert values == sorted(values, reverse=True)
    centroids = {
        (vid, int(pid)): np.asarray(c, dtype=np.float64)
        for vid, part in p.tables["selected_frames"].items()
        for pid, c in zip(part["person_id"].to_pylist(), part["centroid"].to_pylist(), strict=True)
    }
    for r in ours:
        expected = centroids[(first, r["person_a"])] @ centroids[(second, r["person_b"])]
        assert r["similarity"] == pytest.approx(expected, abs=0.0015)
    # The same person in both videos makes the three most similar pairs, near 1; different
    # people are far below the pipeline's own same-person level (about 0.4).
    assert [r["person_a"] for r in ours[:3]] == [r["person_b"] for r in ours[:3]]
    assert sorted(r["person_a"] for r in ours[:3]) == [0, 1, 2]
    assert all(r["similarity"] >= 0.99 for r in ours[:3])
    assert all(r["similarity"] < 0.4 for r in ours[3:])
    results = {vid: m["results"] for vid, m in p.manifests.items()}
    for r in ours:
        assert r["face_a"] == results[first][r["person_a"]]["face_s3_key"]
        assert r["face_b"] == results[second][r["person_b"]]["face_s3_key"]


def check_people_and_quality(rows: list[dict], p: Processed) -> None:
    ours = {row["video_id"]: row for row in p.only_ours(rows)}
    assert set(ours) == set(p.video_ids)
    for vid, row in ours.items():
        quality = np.asarray(p.tables["face_detections"][vid]["face_quality"], dtype=np.float64)
        assert row["people"] == p.manifests[vid]["people_found"] == 3
        assert row["faces"] == len(quality)
        assert row["avg_quality"] == pytest.approx(quality.mean(), abs=0.051)
        assert row["best_quality"] == pytest.approx(quality.max(), abs=0.051)
        assert 0 < row["avg_quality"] <= row["best_quality"] <= 100


def check_tracks(rows: list[dict], p: Processed) -> None:
    for vid in p.video_ids:
        tracks = [row for row in rows if row["video_id"] == vid]
        selected = p.tables["selected_frames"][vid].to_pylist()
        assert {row["person_id"] for row in tracks} == {0, 1, 2}
        for person in selected:
            mine = [row for row in tracks if row["person_id"] == person["person_id"]]
            assert sum(row["faces"] for row in mine) == person["faces"]
            assert min(row["start_s"] for row in mine) == pytest.approx(person["first_seen_s"])
            assert max(row["end_s"] for row in mine) == pytest.approx(person["last_seen_s"])
            for before, after in itertools.pairwise(mine):
                assert before["end_s"] < after["start_s"]  # one face at a time per person
        # B is on screen twice, with C's shot in between: two separate appearances.
        assert len([row for row in tracks if row["person_id"] == 1]) >= 2


def _registry(p: Processed) -> tuple[list[dict], list[dict]]:
    """The registry the two runs left in this module's warehouse: talents and appearances."""
    warehouse = Warehouse(store_for(p.settings), WAREHOUSE_PREFIX)
    return (
        warehouse.read_whole("talents").to_pylist(),
        warehouse.read_whole("talent_appearances").to_pylist(),
    )


def check_videos_of_a_talent(rows: list[dict], p: Processed) -> None:
    talents, _ = _registry(p)
    # The talents view leaves the biometric exemplars out of SQL.
    assert "exemplars" not in query_json("SELECT * FROM talents LIMIT 1")[0]
    # The same clip twice: three talents of two videos each; the first by id is shown.
    assert sorted(len(t["videos"]) for t in talents) == [2, 2, 2]
    first = min(t["talent_id"] for t in talents)
    assert {r["talent_id"] for r in rows} == {first}
    assert sorted(r["video_id"] for r in rows) == sorted(p.video_ids)
    for r in rows:
        result = p.manifests[r["video_id"]]["results"][r["person_id"]]
        assert r["key"] == p.manifests[r["video_id"]]["source"]["key"]
        assert r["s3_key"] == result["s3_key"]
        assert r["screen_time_s"] == pytest.approx(result["screen_time"])
    # The published manifests carry the talent of each person.
    manifests = {vid: manifest_of(p.settings, m["source"]["key"]) for vid, m in p.manifests.items()}
    assert {manifests[r["video_id"]]["results"][r["person_id"]]["talent_id"] for r in rows} == {
        first
    }


def check_screen_time_per_month(rows: list[dict], p: Processed) -> None:
    talents, appearances = _registry(p)
    assert {r["talent_id"] for r in rows} == {t["talent_id"] for t in talents}
    for r in rows:
        mine = [a for a in appearances if a["talent_id"] == r["talent_id"]]
        assert r["videos"] == 2 and r["name"] is None
        assert r["screen_time_s"] == pytest.approx(sum(a["screen_time_s"] for a in mine), abs=0.051)
        month = min(a["ingested_at"] for a in mine)
        assert r["month"].startswith(f"{month.year:04d}-{month.month:02d}-01")
    values = [r["screen_time_s"] for r in rows]
    assert values == sorted(values, reverse=True)  # one month: by screen time


def check_talents_together(rows: list[dict], p: Processed) -> None:
    talents, _ = _registry(p)
    ids = sorted(t["talent_id"] for t in talents)
    # Three talents, each in both videos: every pair shares both.
    assert [(r["talent_a"], r["talent_b"]) for r in rows] == [
        (a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]
    ]
    assert all(r["videos"] == 2 and sorted(r["video_ids"]) == sorted(p.video_ids) for r in rows)


CHECKS: dict[str, Callable[[list[dict], Processed], None]] = {
    "Screen time per person per video": check_screen_time,
    "Faces per minute per video": check_faces_per_minute,
    "Most similar people across different videos": check_similar_people,
    "People and face quality per video": check_people_and_quality,
    "Appearances (tracks) of each person": check_tracks,
    "Every video with a talent": check_videos_of_a_talent,
    "Screen time per talent per month": check_screen_time_per_month,
    "Talents appearing together": check_talents_together,
}


def test_every_readme_query_is_checked() -> None:
    assert len(README_QUERIES) >= 5
    assert set(README_QUERIES) == set(CHECKS), "add a check for each README query"


@pytest.mark.slow
@pytest.mark.parametrize("title", list(README_QUERIES))
def test_readme_query(title: str, processed: Processed) -> None:
    rows = query_json(README_QUERIES[title])
    assert rows, f"{title}: no rows"
    CHECKS[title](rows, processed)


# --------------------------------------------------------------------------- formats


@pytest.mark.slow
def test_views_have_the_table_columns_and_one_video_id(processed: Processed) -> None:
    for name, schema in TABLE_SCHEMAS.items():
        vid = processed.video_ids[0]
        rows = query_json(f"SELECT * FROM {name} WHERE video_id = '{vid}' LIMIT 1")
        assert list(rows[0]) == schema.names  # a second video_id would show as video_id_1


@pytest.mark.slow
def test_csv_and_table_formats(processed: Processed) -> None:
    ids = ", ".join(f"'{vid}'" for vid in processed.video_ids)
    sql = (
        "SELECT video_id, person_id, screen_time_s, centroid FROM selected_frames "
        f"WHERE video_id IN ({ids}) ORDER BY video_id, person_id"
    )
    proc = talent_query(sql, "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "video_id,person_id,screen_time_s,centroid"
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 6
    for row in rows:
        part = processed.tables["selected_frames"][row["video_id"]].to_pylist()
        stored = next(r for r in part if r["person_id"] == int(row["person_id"]))
        assert float(row["screen_time_s"]) == stored["screen_time_s"]
        # Arrays are JSON text whose numbers give back the stored float32 values exactly.
        centroid = np.asarray(json.loads(row["centroid"]), dtype=np.float32)
        np.testing.assert_array_equal(centroid, np.asarray(stored["centroid"], np.float32))

    proc = talent_query(sql.replace(", centroid", ""), "table")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").splitlines()
    assert lines[-1] == "6 rows"
    box = lines[:-1]
    assert len({len(line) for line in box}) == 1  # aligned
    assert [c.strip() for c in box[1].strip("│").split("│")] == [
        "video_id",
        "person_id",
        "screen_time_s",
    ]
    assert [c.strip() for c in box[2].strip("│").split("│")] == ["varchar", "integer", "double"]
    body = [[c.strip() for c in line.strip("│").split("│")] for line in box[4:-1]]
    assert [row[0] for row in body] == [row["video_id"] for row in rows]
    assert [row[1] for row in body] == ["0", "1", "2"] * 2


@pytest.mark.slow
def test_json_values(processed: Processed) -> None:
    vid = processed.video_ids[0]
    rows = query_json(
        "SELECT v.ingested_at, f.embedding, f.landmarks, f.yaw FROM videos v "
        f"JOIN face_detections f USING (video_id) WHERE video_id = '{vid}' "
        "ORDER BY f.frame_index, f.face_index LIMIT 1"
    )
    stored = processed.tables["face_detections"][vid].slice(0, 1).to_pylist()[0]
    ingested = dt.datetime.fromisoformat(rows[0]["ingested_at"])
    assert ingested.utcoffset() == dt.timedelta(0)
    assert ingested == processed.tables["videos"][vid]["ingested_at"][0].as_py()
    embedding = np.asarray(rows[0]["embedding"], dtype=np.float32)
    assert embedding.shape == (512,)
    np.testing.assert_array_equal(embedding, np.asarray(stored["embedding"], np.float32))
    assert len(rows[0]["landmarks"]) == 10
    assert rows[0]["yaw"] is None or isinstance(rows[0]["yaw"], float)


def test_value_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALENT_WAREHOUSE", str(tmp_path / "warehouse"))
    settings = Settings.from_env()
    sql = (
        "SELECT 0.1::FLOAT AS f, [0.1::FLOAT, 2] AS l, TIMESTAMPTZ '2024-01-02 03:04:05+02' AS t,"
        " NULL AS n, 'a,b' AS s, 'nan'::DOUBLE AS nan, 1 AS x, 2 AS x, sum(i) AS total"
        " FROM range(3) r(i)"
    )
    assert json.loads(run_query(sql, settings=settings, fmt="json")) == [
        {
            "f": 0.1,
            "l": [0.1, 2.0],
            "t": "2024-01-02T01:04:05+00:00",
            "n": None,
            "s": "a,b",
            "nan": None,
            "x": 1,
            "x_1": 2,
            "total": 3,
        }
    ]
    assert run_query(sql, settings=settings, fmt="csv").splitlines() == [
        "f,l,t,n,s,nan,x,x,total",
        '0.1,"[0.1, 2.0]",2024-01-02T01:04:05+00:00,,"a,b",nan,1,2,3',
    ]
    assert run_query("SELECT 1 WHERE false", settings=settings, fmt="json") == "[]"
    with pytest.raises(QueryError, match="unknown format"):
        run_query("SELECT 1", settings=settings, fmt="xml")


# --------------------------------------------------------------------------- warehouses


def test_empty_warehouse_gives_empty_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALENT_WAREHOUSE", str(tmp_path / "fresh"))
    assert query_json("SELECT count(*) AS n FROM videos") == [{"n": 0}]
    registry = {name: REGISTRY_SCHEMAS[name] for name in REGISTRY_TABLES}
    with connect(Settings.from_env()) as con:
        for name, schema in {**TABLE_SCHEMAS, **registry}.items():
            columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
            assert columns == [c for c in schema.names if c not in HIDDEN_COLUMNS.get(name, ())]
            assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)


def test_empty_views_have_the_types_of_the_parquet_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talent_assets.infra.storage import LocalObjectStore

    monkeypatch.setenv("TALENT_WAREHOUSE", str(tmp_path / "empty"))
    with connect(Settings.from_env()) as con:
        empty = {name: con.execute(f"DESCRIBE {name}").fetchall() for name in TABLE_SCHEMAS}
    warehouse = Warehouse(LocalObjectStore(tmp_path), "written/")
    for name, schema in TABLE_SCHEMAS.items():
        warehouse.write(name, "video-1", schema.empty_table())  # a 0-row Parquet partition
    monkeypatch.setenv("TALENT_WAREHOUSE", str(tmp_path / "written"))
    with connect(Settings.from_env()) as con:
        for name in TABLE_SCHEMAS:
            written = con.execute(f"DESCRIBE {name}").fetchall()
            assert [r[:2] for r in written] == [r[:2] for r in empty[name]], name


def test_empty_s3_warehouse(talent_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALENT_WAREHOUSE", f"s3://{talent_env.bucket}/query-tests/nothing")
    assert query_json("SELECT count(*) AS n FROM selected_frames") == [{"n": 0}]


@pytest.mark.slow
def test_local_folder_warehouse(
    talent_env: Settings, three_person, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = three_person
    out = tmp_path / "out"
    proc = subprocess.run(
        [*TALENT, "process", str(path), "--out", str(out), "--json"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    monkeypatch.setenv("TALENT_WAREHOUSE", str(out / "warehouse"))
    rows = query_json(README_QUERIES["People and face quality per video"])
    assert len(rows) == 1
    assert rows[0]["video_id"] == manifest["video_id"]
    assert rows[0]["people"] == manifest["people_found"] == 3
    assert rows[0]["faces"] == manifest["metrics"]["faces_detected"]
    rows = query_json("SELECT * FROM identity_clusters LIMIT 1")
    assert list(rows[0]) == TABLE_SCHEMAS["identity_clusters"].names


# --------------------------------------------------------------------------- errors, secrets


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT no_such_column FROM videos", "no_such_column"),
    ],
)
def test_bad_sql_exits_1_with_one_line(sql: str, expected: str, talent_env: Settings) -> None:
    line = assert_one_line_error(talent_query(sql))
    assert expected in line


def test_unreachable_warehouse_is_one_line(
    talent_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TALENT_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    line = assert_one_line_error(talent_query("SELECT count(*) FROM videos"))
    assert "cannot read the warehouse s3://" in line


def test_wrong_secret_is_refused_and_never_shown(
    talent_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret-" + "x" * 20)
    line = assert_one_line_error(talent_query("SELECT count(*) FROM videos"))  # checks the secret
    assert "403" in line


def test_secret_is_never_printed(talent_env: Settings) -> None:
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    for sql in ("SELECT * FROM duckdb_secrets()", "SELECT * FROM duckdb_settings()"):
        assert query_json(sql)  # talent_query asserts the secret is in no output
    # DuckDB itself redacts it, before our own scrubbing of every output.
    with connect(talent_env) as con:
        (text,) = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchone()
        assert secret not in text and "secret=redacted" in text
        # Loaded from the wheel's file (autoload is off, nothing was installed for it).
        (loaded,) = con.execute(
            "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
        ).fetchone()
        assert loaded
