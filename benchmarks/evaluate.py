"""``make eval``: accuracy of this pipeline and of the original endpoint's approach.

What: builds (or reuses) the labelled set of ``benchmarks/eval_set.py``, runs both systems on
every video as separate processes, scores them with ``benchmarks/metrics.py`` and prints
markdown tables (per video and system, overall, per degradation, and every best frame that
missed), then writes everything as JSON.

* ours: ``talent process VIDEO --out DIR --json``; per-detection person ids are read from the
  ``face_detections`` / ``identity_clusters`` tables of that run.
* baseline: ``python -m benchmarks.baseline VIDEO --json`` (OpenCV seek per sample,
  FaceAnalysis per frame, DBSCAN eps 0.65 / min_samples 3, 40·det + 0.4·pose + 20·area).

Metrics (see ``benchmarks/metrics.py``): people_found exact rate; BCubed precision, recall
and F1 over detections matched to a true face (IoU >= 0.3 with the true box); clusters per
found true person (over-splitting); missed and false people; best-frame hit rate
(selected frame inside the person's clean stretch, box on that person).

Why: one number set that says whether a change to detection, clustering or selection made
the pipeline better or worse, on real faces with known answers, next to the old approach.

How: ``python -m benchmarks.evaluate [--only NAME ...] [--systems ours baseline]
[--out artifacts/eval.json] [--set DIR]`` from the repository root (``make eval``); every
child process runs there too (``cwd``), so ``--work`` is made absolute. About 10-15 minutes
for both systems on two cores (mostly process starts, the 150-s and the 66-s videos); wall
times here are noisy and only indicative: ``benchmarks/bench.py`` is the speed measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import eval_set
from benchmarks.metrics import GroundTruth, evaluate_video, summarise
from benchmarks.procs import run_measured
from benchmarks.systems import (
    REPO,
    baseline_cmd,
    child_env,
    fresh_dir,
    ours_cmd,
    parse_baseline,
    parse_ours,
    provenance,
)

SYSTEMS = ("ours", "baseline")
TIMEOUT_S = 1800


def run_system(system: str, entry: dict[str, Any], work: Path, sample_fps: float) -> dict:
    """Run one system on one eval video; returns its metrics, picks and run figures."""
    video = Path(entry["video"])
    truth = GroundTruth(eval_set.load_truth(entry))
    out = fresh_dir(work / system / entry["name"])
    ours = system == "ours"
    cmd = ours_cmd(video, out, sample_fps) if ours else baseline_cmd(video, sample_fps)
    run = run_measured(cmd, env=child_env(work), cwd=REPO, timeout_s=TIMEOUT_S)
    record: dict[str, Any] = {"run": run.summary()}
    if run.rc != 0:
        record["error"] = (run.stderr.strip().splitlines() or ["failed"])[-1]
        return record
    if system == "ours":
        raw, output = parse_ours(run.stdout, out)
    else:
        raw, output = parse_baseline(run.stdout)
    record["metrics"] = evaluate_video(truth, output, sample_fps=sample_fps)
    record["reported"] = {
        "people_found": raw.get("people_found"),
        "picks": [
            {"person_id": r["person_id"], "timestamp": r["timestamp"], "score": r.get("score")}
            for r in raw.get("results", [])
        ],
        "metrics": raw.get("metrics", {}),
    }
    return record


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _video_row(video: dict[str, Any], system: str) -> str:
    """One row of the per-video table: a system's metrics on one video (or its error)."""
    rec = video["results"].get(system, {})
    m = rec.get("metrics")
    wall = rec.get("run", {}).get("wall_s")
    if m is None:
        return (
            f"| {video['name']} | {system} | {video['true_people']} | "
            f"error: {rec.get('error', 'not run')} |" + " |" * 13
        )
    b = m["bcubed"]
    clear = m.get("bcubed_identifiable", {"n": 0})
    best = m["best_frame"]
    return (
        f"| {video['name']} | {system} | {m['true_people']} | {m['people_found']} | "
        f"{_fmt(m['people_exact'])} | "
        + (" | ".join(_fmt(b[k]) for k in ("precision", "recall", "f1")) if b["n"] else "– | – | –")
        + f" | {_fmt(clear['f1']) if clear['n'] else '–'}"
        + f" | {_fmt(m['clusters_per_person'], 2)} | {m['split_people']} | "
        f"{m['missed_people']} | {m['false_people']} | "
        + (f"{best['hits']}/{best['n']}" if best["n"] else "–")
        + f" | {m['detections']} ({m['unlabelled']}) | {m['noise_labelled']} | "
        f"{_fmt(wall, 1)} |"
    )


def _per_video_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "### Per video\n",
        "| video | system | true | found | exact | B³ P | B³ R | B³ F1 | B³ F1 identifiable "
        "| clusters/person | split | missed | false | best frame | dets (unlab.) | noise "
        "| wall s |",
        "|" + "---|" * 17,
    ]
    for video in report["videos"]:
        for system in report["systems"]:
            lines.append(_video_row(video, system))
    return lines


#: Rows of the overall table: label and summary key (None: composed in ``_overall_cell``).
OVERALL_ROWS: tuple[tuple[str, str | None], ...] = (
    ("people_found exact rate", "people_exact_rate"),
    ("BCubed precision (pooled)", "bcubed_precision"),
    ("BCubed recall (pooled)", "bcubed_recall"),
    ("BCubed F1 (pooled)", "bcubed_f1"),
    ("BCubed F1 (mean of videos)", "bcubed_f1_macro"),
    ("BCubed F1 over identifiable faces (pooled)", "bcubed_f1_identifiable"),
    ("BCubed F1 over identifiable faces (worst video)", "bcubed_f1_identifiable_min"),
    ("clusters per found true person", "clusters_per_person"),
    ("people split (>1 cluster)", "split_people"),
    ("people missed", "missed_people"),
    ("false people", "false_people"),
    ("best-frame hit rate", "best_frame_hit_rate"),
    ("best-frame hits", "best_frame_hits"),
    ("true people / people found", None),
    ("labelled / unlabelled detections", None),
    ("total wall s (indicative)", None),
)


def _overall_cell(label: str, key: str | None, s: dict[str, Any]) -> str:
    if key is not None:
        return _fmt(s.get(key))
    if label.startswith("true"):
        return f"{s.get('true_people')} / {s.get('people_found')}"
    if label.startswith("labelled"):
        return f"{s.get('labelled_detections')} / {s.get('unlabelled_detections')}"
    return _fmt(s.get("wall_s"), 1)


def _overall_table(report: dict[str, Any]) -> list[str]:
    systems = report["systems"]
    lines = [
        "\n### Overall\n",
        "| metric | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for label, key in OVERALL_ROWS:
        cells = [_overall_cell(label, key, report["overall"].get(system, {})) for system in systems]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _degradation_cells(row: dict[str, Any]) -> list[str]:
    """Appearances seen, detections, and main / noise / other shares of one system."""
    seen = f"{row.get('appearances_seen', 0)}/{row.get('appearances', 0)}"
    n = row.get("detections", 0)
    if not n:
        return [seen, "0", "–"]
    shares = f"{row['primary'] / n:.0%} / {row['noise'] / n:.0%} / {row['other'] / n:.0%}"
    return [seen, str(n), shares]


def _degradation_table(report: dict[str, Any]) -> list[str]:
    systems = report["systems"]
    lines = [
        "\n### By degradation\n",
        "Appearances seen: true stretches (person × degradation) with at least one matched "
        "detection. Detections: labelled faces, and the share in the person's main cluster / "
        "left as noise / in another cluster.\n",
        "| degradation | "
        + " | ".join(f"{s} seen | {s} dets | {s} main/noise/other" for s in systems)
        + " |",
        "|---|" + "---|---|---|" * len(systems),
    ]
    kinds = sorted(
        {k for s in systems for k in report["overall"].get(s, {}).get("by_degradation", {})}
    )
    for kind in kinds:
        cells = []
        for system in systems:
            row = report["overall"].get(system, {}).get("by_degradation", {}).get(kind, {})
            cells += _degradation_cells(row)
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines


def _missed_pick(pick: dict[str, Any]) -> str:
    if pick.get("t") is None:
        return "person not found"
    what = f"t={pick['t']:.2f} s: {pick['degradation']}"
    if not pick.get("box_ok", True):
        what += ", box on someone else"
    return what


def _missed_best_frames(report: dict[str, Any]) -> list[str]:
    missed = []
    for video in report["videos"]:
        names = video.get("names", {})
        for system in report["systems"]:
            m = video["results"].get(system, {}).get("metrics")
            if not m:
                continue
            for pick in m["best_frame"]["picks"]:
                if pick["hit"]:
                    continue
                who = names.get(str(pick["true_person"]), pick["true_person"])
                missed.append(f"- {system} / {video['name']} / {who}: {_missed_pick(pick)}")
    return ["\n### Best frames that missed\n", *(missed or ["- none"])]


def markdown(report: dict[str, Any]) -> str:
    """The report's tables as markdown."""
    lines = _per_video_table(report)
    lines += _overall_table(report)
    lines += _degradation_table(report)
    lines += _missed_best_frames(report)
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=eval_set.NAMES, help="just these videos")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--set", type=Path, default=None, help="eval set folder")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "eval.json")
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--work", type=Path, help="keep run outputs here (default: temp)")
    return parser.parse_args(argv)


def evaluate_entry(
    i: int, entries: list[dict[str, Any]], systems: list[str], work: Path, sample_fps: float
) -> dict[str, Any]:
    """Run every system on ``entries[i]``; returns the report's record of that video."""
    entry = entries[i]
    truth = eval_set.load_truth(entry)
    video: dict[str, Any] = {
        "name": entry["name"],
        "kind": entry["kind"],
        "duration_s": entry["duration_s"],
        "true_people": entry["true_people"],
        "names": truth.get("names", {}),
        "results": {},
    }
    # Alternate which system goes first, so neither always runs on a warm page cache.
    order = systems if i % 2 == 0 else list(reversed(systems))
    for system in order:
        rec = run_system(system, entry, work, sample_fps)
        video["results"][system] = rec
        m = rec.get("metrics")
        status = (
            f"found {m['people_found']}/{m['true_people']}, F1 {m['bcubed']['f1']:.3f}"
            if m
            else f"ERROR {rec.get('error')}"
        )
        print(
            f"[{i + 1}/{len(entries)}] {entry['name']:<15} {system:<8} {status} "
            f"({rec['run']['wall_s']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return video


def overall(videos: list[dict[str, Any]], system: str) -> dict[str, Any]:
    """One system's metrics pooled over the videos it scored, failures and total wall."""
    done = [v["results"][system]["metrics"] for v in videos if "metrics" in v["results"][system]]
    summary = summarise(done)
    summary["failed_videos"] = len(videos) - len(done)
    summary["wall_s"] = round(sum(v["results"][system]["run"]["wall_s"] for v in videos), 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    entries = eval_set.build_eval_set(args.set, args.only)
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sample_fps": args.sample_fps,
        "provenance_at_start": provenance(),
        "systems": args.systems,
        "videos": [],
        "overall": {},
    }
    with tempfile.TemporaryDirectory(prefix="talent-eval-") as tmp:
        # Absolute: the children run in the repository root, not in this process's folder.
        work = Path(args.work or tmp).resolve()
        for i in range(len(entries)):
            report["videos"].append(evaluate_entry(i, entries, args.systems, work, args.sample_fps))
    for system in args.systems:
        report["overall"][system] = overall(report["videos"], system)
    report["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(report)
    write_report(report, text, args.out)
    failed = any(s.get("failed_videos") for s in report["overall"].values())
    return 1 if failed else 0


def write_report(report: dict[str, Any], text: str, out: Path) -> None:
    """Print the markdown and write it beside the JSON report (``out`` and ``out.md``)."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(text + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
