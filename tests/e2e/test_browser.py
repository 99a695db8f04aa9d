"""The Dagster UI in a real browser: lineage, the contact sheet preview, the run page.

Drives Debian's chromium (``/usr/bin/chromium``; ``scripts/ensure-chromium`` installs it) with
Playwright against the real local stack (``talent up``'s SeaweedFS + ``dagster dev``) after the
S3 sensor has processed an uploaded video. Screenshots are kept as test artefacts in
``$TALENT_ARTIFACTS_DIR`` (default ``artifacts/browser/``); on failure also ``failure.png``
and a Playwright trace (``trace.zip``, open with ``playwright show-trace``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from playwright.sync_api import Locator, Page, expect, sync_playwright

from talent_assets.core.video_id import video_id_for
from talent_assets.devstack.stack import wait_for_runs
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Wide enough that the lineage of five assets is drawn at full detail (partitions, latest run).
VIEWPORT = {"width": 2400, "height": 1000}
UI_TIMEOUT_MS = 60_000  # the first page load compiles nothing but fetches a lot of GraphQL
ASSETS = ["raw_video", "face_detections", "identity_clusters", "selected_frames"]
REPO = Path(__file__).resolve().parents[2]


def _artifacts_dir() -> Path:
    folder = Path(os.environ.get("TALENT_ARTIFACTS_DIR") or REPO / "artifacts" / "browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _graphql(ui_url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{ui_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body
    return body["data"]


def _settled_boxes(locators: list[Locator], timeout_s: float = 30.0) -> list[dict]:
    """Bounding boxes once they stop moving (the graph pans/zooms to fit after loading)."""
    deadline = time.monotonic() + timeout_s
    previous = None
    while True:
        boxes = [loc.bounding_box() for loc in locators]
        if all(boxes) and boxes == previous:
            return boxes
        if time.monotonic() > deadline:
            raise AssertionError(f"elements did not settle within {timeout_s:.0f} s: {boxes}")
        previous = boxes
        time.sleep(0.25)


def _in_order(boxes: list[dict]) -> bool:
    """Laid out left-to-right or top-to-bottom in this order."""
    xs = [b["x"] for b in boxes]
    ys = [b["y"] for b in boxes]
    return xs == sorted(set(xs)) or ys == sorted(set(ys))


def _loaded_image(page: Page, image: Locator) -> tuple[int, int]:
    """Wait until ``image`` has decoded; returns its natural size."""
    expect(image).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


@pytest.fixture
def processed_video(local_stack, three_person, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The three-person clip uploaded to the stack's bucket and processed by the sensor's run."""
    for name, value in local_stack.environment().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    path, truth = three_person
    key = f"videos/browser/three-{secrets.token_hex(3)}.mp4"
    bucket_store(settings).put_bytes(key, path.read_bytes(), "video/mp4")
    run = wait_for_runs(local_stack.dagster_home, [key], timeout_s=600)[key]
    assert run.status == DagsterRunStatus.SUCCESS, f"run {run.run_id} ended {run.status}"
    return {
        "key": key,
        "video_id": video_id_for(settings.bucket, key, settings.video_prefix),
        "run_id": run.run_id,
        "people": len(truth.people),
    }


@pytest.fixture
def page(local_stack, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A chromium page on the stack's UI; on failure leaves failure.png and trace.zip."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run scripts/ensure-chromium first")
    # Dagster's first-visit dialog would cover the pages: mark it as seen for this instance.
    assert _graphql(local_stack.info.ui_url, "mutation { setNuxSeen }") == {"setNuxSeen": True}
    artifacts = _artifacts_dir()
    failed_before = request.session.testsfailed
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, base_url=local_stack.info.ui_url)
        context.set_default_timeout(UI_TIMEOUT_MS)
        # Assertions have their own 5-s default; the UI on a busy 2-core machine needs more.
        expect.set_options(timeout=UI_TIMEOUT_MS)
        context.tracing.start(screenshots=True, snapshots=True)
        try:
            yield context.new_page()
        finally:
            # The call phase's report is logged before teardown, so a failure is counted.
            if request.session.testsfailed > failed_before:
                for page in context.pages:
                    page.screenshot(path=artifacts / "failure.png", full_page=True)
                context.tracing.stop(path=artifacts / "trace.zip")
            else:
                context.tracing.stop()
            context.close()
            browser.close()


def test_dagster_ui_shows_lineage_contact_sheet_and_run(processed_video: dict, page: Page) -> None:
    artifacts = _artifacts_dir()
    video_id = processed_video["video_id"]
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    # 1. Global asset lineage: the four assets, upstream to downstream, then the registry.
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    graph = page.locator("svg")
    lineage = [*ASSETS, "talent_registry"]
    nodes = [
        graph.locator("foreignObject").filter(has=page.get_by_text(name, exact=True))
        for name in lineage
    ]
    for name, node in zip(lineage, nodes, strict=True):
        expect(node).to_have_count(1)
        expect(node).to_be_visible()
        # Live data (partitions, latest run) has arrived, not just the definitions.
        if name != "talent_registry":  # not partitioned
            expect(node).to_contain_text(re.compile(r"\d+ partitions?"))
        expect(node.get_by_text("Latest event")).to_be_visible()
    boxes = _settled_boxes(nodes)
    assert _in_order(boxes), f"lineage is not {' → '.join(lineage)}: {boxes}"
    page.screenshot(path=artifacts / "lineage.png")

    # 2. selected_frames for this video's partition: metadata with the contact sheet preview.
    page.goto(f"/assets/selected_frames?view=partitions&partition={video_id}")
    # The partition is selected in the list and its details are shown beside it.
    expect(page.locator(f'[title="{video_id}"]')).to_have_count(2)
    metadata = page.locator("table").filter(has=page.get_by_text("people_found", exact=True))
    expect(metadata).to_have_count(1)

    def row(key: str) -> Locator:
        return metadata.locator("tr").filter(has=page.get_by_text(key, exact=True))

    expect(row("table")).to_contain_text(f"video_id={video_id}")
    expect(row("people_found")).to_contain_text(str(processed_video["people"]))

    # The UI renders markdown metadata inline only below 1000 characters; longer values (any
    # real image, a long table) sit behind a "[Show Markdown]" link that opens a dialog.
    dialog = page.get_by_role("dialog")
    people_inline = row("people").get_by_text("[Show Markdown]").count() == 0
    if not people_inline:
        row("people").get_by_text("[Show Markdown]").click()
    people = (row("people") if people_inline else dialog).locator("table")
    expect(people).to_be_visible()
    expect(people.locator("th").first).to_have_text("person")
    expect(people.locator("tbody tr")).to_have_count(processed_video["people"])
    expect(people.locator("a").first).to_contain_text("person_0.jpg")
    if not people_inline:
        page.screenshot(path=artifacts / "selected_frames_people.png")
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_have_count(0)

    def check_image_dialog(key: str, mime: str, screenshot: str) -> None:
        """Open ``key``'s markdown dialog: one decoded image of ``mime``; screenshot; close."""
        row(key).get_by_text("[Show Markdown]").click()
        expect(dialog).to_contain_text(key)
        image = dialog.locator(f'img[src^="data:{mime};base64,"]')
        expect(image).to_have_count(1)
        width, height = _loaded_image(page, image)
        assert width >= 100 and height >= 50, (key, width, height)
        page.screenshot(path=artifacts / screenshot)
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_have_count(0)

    check_image_dialog("contact_sheet", "image/jpeg", "selected_frames.png")
    check_image_dialog("timeline", "image/png", "selected_frames_timeline.png")

    # 3. The sensor's run: succeeded, the four steps in order.
    run_id = processed_video["run_id"]
    page.goto(f"/runs/{run_id}")
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_text(f"partition: {video_id}")).to_be_visible()
    expect(page.get_by_text("Succeeded (4)")).to_be_visible()
    # The waterfall view draws every step in its own box, in dependency order.
    page.locator("button").filter(has=page.get_by_role("img", name="gantt_waterfall")).click()
    steps = [page.locator(f'.chart-element.box[data-tooltip="{name}"]') for name in ASSETS]
    for step in steps:
        expect(step).to_be_visible()
    assert _in_order(_settled_boxes(steps)), _settled_boxes(steps)
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    page.screenshot(path=artifacts / "run.png")

    assert page_errors == []


def test_dagster_ui_shows_check_results_and_a_failed_runs_reason(
    processed_video: dict, page: Page, local_stack, bad_inputs: dict[str, Path]
) -> None:
    """README: "asset checks show pass/fail with reasons" and "a failed run shows its one-line
    reason" in the UI. The checks page shows the latest evaluation of each check across
    partitions (Dagster's view), so it is read right after this video's successful run."""
    artifacts = _artifacts_dir()
    page.goto("/assets/face_detections?view=checks")
    checks = ["embeddings_unit_norm", "frames_analyzed", "schema_matches"]
    for name in checks:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(checks))
    # The selected check: what it checks, and its latest evaluation with our reason.
    page.get_by_text("embeddings_unit_norm", exact=True).first.click()
    expect(page.get_by_text("Every ArcFace embedding is L2-normalised")).to_be_visible()
    expect(page.get_by_text(re.compile(r"all \d+ embeddings have unit norm"))).to_be_visible()
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / "checks.png")

    settings = Settings.from_env()  # the stack's, set by processed_video
    key = f"videos/browser/not-a-video-{secrets.token_hex(3)}.mp4"
    bucket_store(settings).put_bytes(key, bad_inputs["text"].read_bytes(), "video/mp4")
    run = wait_for_runs(local_stack.dagster_home, [key], timeout_s=600)[key]
    assert run.status == DagsterRunStatus.FAILURE, f"run {run.run_id} ended {run.status}"
    page.goto(f"/runs/{run.run_id}")
    expect(page.get_by_text("Failure", exact=True).first).to_be_visible()
    expect(page.get_by_text("Errored (1)")).to_be_visible()
    reason = f"{key}: not a video: the file's format is not recognised"
    expect(page.get_by_text(reason).first).to_be_visible()
    page.screenshot(path=artifacts / "failed_run.png")
