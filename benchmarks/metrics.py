"""Accuracy metrics of a "who is in this video, and their best frame" system.

What: pure functions (numpy only, no video, no models) that score one system's output for one
video against its ground truth, and pool those scores over an evaluation set:

* ``people_exact``: the number of people found equals the number of true people.
* BCubed precision / recall / F1 over *detections*: every detected face that can be matched
  to a true person (see :func:`label_detections`) is an item; its predicted cluster is the
  person id the system gave it. Faces a system left unassigned (``-1``, "noise") count as
  singleton clusters, so dropping a face costs recall but never precision.
* clusters per true person (over-splitting): predicted people whose majority of detections
  belong to a true person are mapped to that person; ideal is exactly 1 per found person.
  ``split_people`` counts persons with more than one, ``missed_people`` persons with none.
* false people: predicted people whose detections mostly match nobody (no truth box).
* appearance recall per degradation: the share of true appearances (one person's stretch
  with one degradation) in which at least one of their faces was detected and matched.
* best-frame hit: for each true person that has a clean (undegraded) stretch, the predicted
  person that holds most of their detections is their *primary* cluster; its selected frame
  is a hit when its timestamp lies in a clean stretch of that person and its box (when
  given) overlaps the person's true box there.

Why: these are the numbers the pipeline is optimised against (``benchmarks/evaluate.py``);
keeping them pure makes them unit-testable on hand-made cases
(``tests/unit/test_evaluation.py``).

How: build a :class:`GroundTruth` from a truth dict (the JSON ``benchmarks/eval_set.py``
writes: ``tests.support.media.VideoTruth.to_dict()`` plus labels of the real clips), a
:class:`SystemOutput` from a system's detections and picks, and call :func:`evaluate_video`;
pool several with :func:`summarise`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = [
    "CLEAN",
    "MIN_IOU",
    "UNRATED",
    "BCubed",
    "Detection",
    "GroundTruth",
    "Pick",
    "SystemOutput",
    "bcubed",
    "box_iou",
    "cluster_mapping",
    "evaluate_video",
    "label_detections",
    "summarise",
]

Box = tuple[float, float, float, float]

#: A detection belongs to the true person whose box it overlaps best, if IoU >= this.
MIN_IOU = 0.3
#: Degradation name of an undegraded appearance (``None`` in the truth JSON).
CLEAN = "clean"
#: Degradation of real clips' intervals: visible, but nobody rated how good the face is.
UNRATED = "unrated"
NOISE = -1
#: Degradations under which a face is not identifiable: nobody could say from it alone who
#: it is (media's "blur", "dark", "tiny", "half_out", "profile" and the hard-footage
#: "occluded", "mic", "motion", "defocus", and "distant": a face under 40 px in a crowd).
#: "soft_blur", "small" and real clips count as identifiable.
UNIDENTIFIABLE = frozenset(
    {
        "blur", "dark", "tiny", "half_out", "profile", "occluded", "mic", "motion", "defocus",
        "distant",
    }
)  # fmt: skip
#: A true person must be found when they are identifiable in at least this many sampled
#: frames (the pipeline's evidence rule); others are optional, and a predicted person made
#: of them is a phantom (a false person).
MIN_IDENTIFIABLE_FRAMES = 2

# Slack when comparing times and frame positions (timestamps arrive rounded to 1 µs).
_EPS = 1e-6


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One detected face: time (s), box (x1, y1, x2, y2, display px) and the system's person
    id for it (``-1`` = left unassigned)."""

    t: float
    box: Box
    person: int


@dataclass(frozen=True)
class Pick:
    """A person a system reports: its id, the selected frame's time and (optional) face box."""

    person: int
    t: float
    box: Box | None = None


@dataclass(frozen=True)
class SystemOutput:
    """What one system said about one video."""

    detections: Sequence[Detection]
    people: Sequence[Pick]


@dataclass(frozen=True)
class _Interval:
    start_s: float
    end_s: float
    degradation: str
    start_frame: int | None
    end_frame: int | None
    box_start: Box | None
    box_end: Box | None


class GroundTruth:
    """Who is visible when and where, from a truth dict.

    Synthetic videos (``media.VideoTruth.to_dict()``) have frame-exact intervals with boxes;
    this mirrors ``VideoTruth.face_box_at`` so that metrics need neither the video nor the
    builder. Real clips have time intervals without boxes (``box_start`` null).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.name: str = str(data.get("name", ""))
        self.size: tuple[int, int] = (int(data["size"][0]), int(data["size"][1]))
        self.fps = Fraction(str(data["fps"])) if data.get("fps") else Fraction(0)
        self.duration_s = float(data.get("duration_s", 0.0))
        self.intervals: dict[int, list[_Interval]] = {}
        for person, items in (data.get("intervals") or {}).items():
            self.intervals[int(person)] = [
                _Interval(
                    start_s=float(iv["start_s"]),
                    end_s=float(iv["end_s"]),
                    degradation=iv.get("degradation") or CLEAN,
                    start_frame=iv.get("start_frame"),
                    end_frame=iv.get("end_frame"),
                    box_start=tuple(iv["box_start"]) if iv.get("box_start") else None,
                    box_end=tuple(iv["box_end"]) if iv.get("box_end") else None,
                )
                for iv in items
            ]

    @property
    def people(self) -> list[int]:
        """True people: everyone with at least one interval."""
        return sorted(p for p, ivs in self.intervals.items() if ivs)

    def frame_at(self, t: float) -> int:
        return math.floor(t * float(self.fps) + _EPS)

    def interval_at(self, person: int, t: float) -> _Interval | None:
        for iv in self.intervals.get(person, []):
            if iv.start_frame is not None and iv.end_frame is not None and self.fps:
                if iv.start_frame <= self.frame_at(t) < iv.end_frame:
                    return iv
            elif iv.start_s - _EPS <= t < iv.end_s - _EPS:
                return iv
        return None

    def visible(self, t: float) -> list[int]:
        return [p for p in self.people if self.interval_at(p, t) is not None]

    def degradation_at(self, person: int, t: float) -> str | None:
        """``"clean"``, a degradation name, ``"unrated"`` (real clips), or None (not visible)."""
        iv = self.interval_at(person, t)
        return iv.degradation if iv else None

    def box_at(self, person: int, t: float) -> Box | None:
        """The person's face box at ``t`` clipped to the frame; None if not visible or unknown."""
        iv = self.interval_at(person, t)
        if iv is None or iv.box_start is None or iv.box_end is None:
            return None
        n = (iv.end_frame or 0) - (iv.start_frame or 0)
        i = self.frame_at(t) - (iv.start_frame or 0)
        u = i / (n - 1) if n > 1 else 0.0
        box = [a + (b - a) * u for a, b in zip(iv.box_start, iv.box_end, strict=True)]
        return _clip(box, self.size)

    def sample_times(self, sample_fps: float) -> list[float]:
        """When a sampler taking the first frame of every ``1 / sample_fps`` slot looks."""
        if sample_fps <= 0 or self.duration_s <= 0:
            return []
        slots = math.ceil(self.duration_s * sample_fps - _EPS)
        if not self.fps:
            return [k / sample_fps for k in range(slots)]
        fps = float(self.fps)
        frames = (math.ceil(k * fps / sample_fps - _EPS) for k in range(slots))
        return [f / fps for f in frames if f / fps < self.duration_s - _EPS]

    def identifiable_frames(self, person: int, sample_fps: float) -> int:
        """Sampled frames in which ``person`` is visible and identifiable."""
        return sum(
            1
            for t in self.sample_times(sample_fps)
            if (d := self.degradation_at(person, t)) is not None and d not in UNIDENTIFIABLE
        )

    def required_people(self, sample_fps: float) -> list[int]:
        """The people a system must find: identifiable in >= MIN_IDENTIFIABLE_FRAMES samples."""
        return [
            p
            for p in self.people
            if self.identifiable_frames(p, sample_fps) >= MIN_IDENTIFIABLE_FRAMES
        ]

    def clean_intervals(self, person: int) -> list[tuple[float, float]]:
        return [
            (iv.start_s, iv.end_s)
            for iv in self.intervals.get(person, [])
            if iv.degradation == CLEAN
        ]


def _clip(box: Sequence[float], size: tuple[int, int]) -> Box:
    width, height = size
    return (
        min(max(float(box[0]), 0.0), width),
        min(max(float(box[1]), 0.0), height),
        min(max(float(box[2]), 0.0), width),
        min(max(float(box[3]), 0.0), height),
    )


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Detection labels
# --------------------------------------------------------------------------------------------


def label_detections(
    truth: GroundTruth, detections: Iterable[Detection], min_iou: float = MIN_IOU
) -> list[int | None]:
    """The true person of each detection, or None ("unlabelled").

    A detection (its box clipped to the frame, as truth boxes are) belongs to the visible
    person whose true box it overlaps best, if that IoU is at least ``min_iou``. Where boxes
    are unknown (real clips), a detection while exactly one box-less person is visible is
    that person's. Several detections may match one person in a frame (a duplicate box is
    still that person's face).
    """
    labels: list[int | None] = []
    for det in detections:
        box = _clip(det.box, truth.size)
        best, best_iou = None, min_iou
        boxless: list[int] = []
        for person in truth.visible(det.t):
            true_box = truth.box_at(person, det.t)
            if true_box is None:  # visible, box unknown (real clip)
                boxless.append(person)
                continue
            iou = box_iou(box, true_box)
            if iou >= best_iou:
                best, best_iou = person, iou
        if best is None and len(boxless) == 1:
            best = boxless[0]
        labels.append(best)
    return labels


# --------------------------------------------------------------------------------------------
# BCubed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BCubed:
    """Mean per-item precision and recall (and their sums, for pooling), F1 of the means."""

    precision: float
    recall: float
    f1: float
    n: int
    precision_sum: float
    recall_sum: float


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def bcubed(truth: Sequence[Hashable], predicted: Sequence[int]) -> BCubed:
    """BCubed over items with true classes ``truth`` and predicted clusters ``predicted``.

    Item precision: share of its predicted cluster with its true class; recall: share of its
    true class in its predicted cluster. Predicted ``-1`` (noise) items are singletons.
    Returns zeros with ``n == 0`` for no items.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    n = len(truth)
    if n == 0:
        return BCubed(0.0, 0.0, 0.0, 0, 0.0, 0.0)
    clusters = [("noise", i) if p == NOISE else ("c", p) for i, p in enumerate(predicted)]
    pair = Counter(zip(truth, clusters, strict=True))
    cluster_size = Counter(clusters)
    class_size = Counter(truth)
    p_sum = sum(pair[(t, c)] / cluster_size[c] for t, c in zip(truth, clusters, strict=True))
    r_sum = sum(pair[(t, c)] / class_size[t] for t, c in zip(truth, clusters, strict=True))
    p, r = p_sum / n, r_sum / n
    return BCubed(p, r, _f1(p, r), n, p_sum, r_sum)


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------


def cluster_mapping(
    labels: Sequence[int | None], predicted: Sequence[int], people: Iterable[int] = ()
) -> dict[int, int | None]:
    """Map each predicted person to the true person holding most of its detections.

    ``labels`` are true persons (None = unlabelled) and ``predicted`` the system's ids, per
    detection. A predicted person maps to None (a *false person*) when its unlabelled
    detections outnumber those of every true person, or when it has no detections at all
    (ids in ``people`` that no detection carries). Ties between true persons go to the one
    with the lower index; a tie with "unlabelled" goes to the person.
    """
    votes: dict[int, Counter] = defaultdict(Counter)
    for label, pred in zip(labels, predicted, strict=True):
        if pred != NOISE:
            votes[pred][label] += 1
    mapping: dict[int, int | None] = {p: None for p in people if p != NOISE}
    for pred, counter in votes.items():
        persons = sorted(((-n, t) for t, n in counter.items() if t is not None))
        if persons and -persons[0][0] >= counter.get(None, 0):
            mapping[pred] = persons[0][1]
        else:
            mapping[pred] = None
    return mapping


def _degradation_of(truth: GroundTruth, label: int, t: float) -> str:
    return truth.degradation_at(label, t) or CLEAN


def _clusters_of(mapping: dict[int, int | None]) -> dict[int, list[int]]:
    """The predicted people mapped to each true person."""
    clusters_of: dict[int, list[int]] = defaultdict(list)
    for pred, person in mapping.items():
        if person is not None:
            clusters_of[person].append(pred)
    return clusters_of


def _primary_clusters(
    labels: Sequence[int | None], predicted: Sequence[int], labelled: Sequence[int]
) -> dict[int, int]:
    """Primary cluster of each true person: the predicted person with most of their faces
    (ties to the lower id)."""
    held: dict[int, Counter] = defaultdict(Counter)
    for i in labelled:
        if predicted[i] != NOISE:
            held[labels[i]][predicted[i]] += 1  # type: ignore[index]
    return {
        person: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        for person, counter in held.items()
    }


def _best_frame_entry(
    truth: GroundTruth, person: int, cluster: int | None, pick: Pick | None, min_iou: float
) -> dict[str, Any]:
    """Whether ``pick`` (the selected frame of ``person``'s primary cluster) is a hit."""
    entry: dict[str, Any] = {"true_person": person, "person": cluster, "hit": False}
    if pick is not None:
        degradation = truth.degradation_at(person, pick.t)
        true_box = truth.box_at(person, pick.t)
        box_ok = (
            pick.box is None
            or true_box is None
            or box_iou(_clip(pick.box, truth.size), true_box) >= min_iou
        )
        entry.update(
            t=round(pick.t, 3),
            degradation=degradation or "not visible",
            box_ok=box_ok,
            hit=degradation == CLEAN and box_ok,
        )
    return entry


def _best_frames(
    truth: GroundTruth, output: SystemOutput, primary: dict[int, int], min_iou: float
) -> list[dict[str, Any]]:
    """Best-frame verdicts of every true person that has a clean stretch."""
    picks_by_id = {p.person: p for p in output.people}
    best: list[dict[str, Any]] = []
    for person in truth.people:
        if not truth.clean_intervals(person):
            continue  # nothing to be right about (e.g. real clips)
        cluster = primary.get(person)
        pick = picks_by_id.get(cluster) if cluster is not None else None
        best.append(_best_frame_entry(truth, person, cluster, pick, min_iou))
    return best


def _degradation_row() -> dict[str, int]:
    return {
        "detections": 0,
        "primary": 0,
        "noise": 0,
        "other": 0,
        "appearances": 0,
        "appearances_seen": 0,
    }


def _by_degradation(
    truth: GroundTruth,
    dets: Sequence[Detection],
    labels: Sequence[int | None],
    predicted: Sequence[int],
    labelled: Sequence[int],
    primary: dict[int, int],
) -> dict[str, dict[str, int]]:
    """Per degradation: appearances (seen) and labelled detections by where they went."""
    by_degradation: dict[str, dict[str, int]] = defaultdict(_degradation_row)
    # Appearance recall: an interval (one person, one stretch, one degradation) is "seen"
    # when at least one detection labelled with that person falls inside it.
    seen_at: dict[int, list[float]] = defaultdict(list)
    for i in labelled:
        seen_at[labels[i]].append(dets[i].t)  # type: ignore[index]
    for person in truth.people:
        for iv in truth.intervals[person]:
            row = by_degradation[iv.degradation]
            row["appearances"] += 1
            if any(truth.interval_at(person, t) is iv for t in seen_at.get(person, [])):
                row["appearances_seen"] += 1
    for i in labelled:
        label = labels[i]
        row = by_degradation[_degradation_of(truth, label, dets[i].t)]  # type: ignore[arg-type]
        row["detections"] += 1
        if predicted[i] == NOISE:
            row["noise"] += 1
        elif predicted[i] == primary.get(label):  # type: ignore[arg-type]
            row["primary"] += 1
        else:
            row["other"] += 1
    return {k: dict(v) for k, v in sorted(by_degradation.items())}


def _bcubed_dict(score: BCubed) -> dict[str, Any]:
    return {
        "precision": _r(score.precision),
        "recall": _r(score.recall),
        "f1": _r(score.f1),
        "n": score.n,
        "precision_sum": score.precision_sum,
        "recall_sum": score.recall_sum,
    }


def evaluate_video(
    truth: GroundTruth, output: SystemOutput, min_iou: float = MIN_IOU, sample_fps: float = 2.0
) -> dict[str, Any]:
    """All metrics of one system on one video, as a JSON-friendly dict (see module doc).

    People are scored against the *required* people (identifiable in enough sampled frames at
    ``sample_fps``); a predicted person that maps to an optional one is a phantom and counts
    as a false person.
    """
    dets = list(output.detections)
    labels = label_detections(truth, dets, min_iou)
    predicted = [d.person for d in dets]
    true_people = truth.required_people(sample_fps)
    mapping = cluster_mapping(labels, predicted, [p.person for p in output.people])
    phantoms = sorted(p for p, person in mapping.items() if person not in (None, *true_people))
    mapping = {p: (None if p in phantoms else person) for p, person in mapping.items()}

    labelled = [i for i, lab in enumerate(labels) if lab is not None]
    score = bcubed([labels[i] for i in labelled], [predicted[i] for i in labelled])
    # The same over faces a person could identify: unidentifiable faces (blur, occlusion, a
    # crowd's distant faces) may rightly stay unassigned, which costs the plain score recall.
    clear = [
        i
        for i in labelled
        if _degradation_of(truth, labels[i], dets[i].t) not in UNIDENTIFIABLE  # type: ignore[arg-type]
    ]
    score_clear = bcubed([labels[i] for i in clear], [predicted[i] for i in clear])
    clusters_of = _clusters_of(mapping)
    found = [p for p in true_people if clusters_of.get(p)]
    false_people = sorted(pred for pred, person in mapping.items() if person is None)
    primary = _primary_clusters(labels, predicted, labelled)
    best = [
        b for b in _best_frames(truth, output, primary, min_iou) if b["true_person"] in true_people
    ]

    n_clusters = sum(len(clusters_of[p]) for p in found)
    return {
        "true_people": len(true_people),
        "people_found": len(output.people),
        "people_exact": len(output.people) == len(true_people),
        "detections": len(dets),
        "labelled": len(labelled),
        "unlabelled": len(dets) - len(labelled),
        "noise_labelled": sum(1 for i in labelled if predicted[i] == NOISE),
        "bcubed": _bcubed_dict(score),
        "bcubed_identifiable": _bcubed_dict(score_clear),
        "found_people": len(found),
        "clusters_matched": n_clusters,
        "clusters_per_person": _r(n_clusters / len(found)) if found else None,
        "split_people": sum(1 for p in found if len(clusters_of[p]) > 1),
        "missed_people": len(true_people) - len(found),
        "false_people": len(false_people),
        "phantom_people": len(phantoms),
        "optional_people": len(truth.people) - len(true_people),
        "best_frame": {
            "hits": sum(1 for b in best if b["hit"]),
            "n": len(best),
            "picks": best,
        },
        "by_degradation": _by_degradation(truth, dets, labels, predicted, labelled, primary),
    }


def _r(x: float) -> float:
    return round(float(x), 4)


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool per-video results of one system.

    Rates are over videos (people exact) or over items (BCubed pooled over all labelled
    detections: "micro"; the mean of per-video F1 over videos with detections: "macro"),
    clusters per person over all found people, best-frame hits over all scored people.
    """
    n_videos = len(results)
    p_sum = sum(r["bcubed"]["precision_sum"] for r in results)
    r_sum = sum(r["bcubed"]["recall_sum"] for r in results)
    n_items = sum(r["bcubed"]["n"] for r in results)
    p = p_sum / n_items if n_items else 0.0
    rec = r_sum / n_items if n_items else 0.0
    scored = [r["bcubed"]["f1"] for r in results if r["bcubed"]["n"]]
    clear = [r["bcubed_identifiable"] for r in results if "bcubed_identifiable" in r]
    clear_n = sum(c["n"] for c in clear)
    clear_p = sum(c["precision_sum"] for c in clear) / clear_n if clear_n else 0.0
    clear_r = sum(c["recall_sum"] for c in clear) / clear_n if clear_n else 0.0
    found = sum(r["found_people"] for r in results)
    hits = sum(r["best_frame"]["hits"] for r in results)
    n_best = sum(r["best_frame"]["n"] for r in results)
    by_degradation: dict[str, dict[str, int]] = defaultdict(Counter)  # type: ignore[arg-type]
    for r in results:
        for key, row in r["by_degradation"].items():
            by_degradation[key].update(row)
    return {
        "videos": n_videos,
        "people_exact_rate": _r(sum(r["people_exact"] for r in results) / n_videos)
        if n_videos
        else 0.0,
        "bcubed_precision": _r(p),
        "bcubed_recall": _r(rec),
        "bcubed_f1": _r(_f1(p, rec)),
        "bcubed_f1_macro": _r(sum(scored) / len(scored)) if scored else 0.0,
        "bcubed_f1_identifiable": _r(_f1(clear_p, clear_r)),
        "bcubed_f1_identifiable_min": _r(min((c["f1"] for c in clear if c["n"]), default=0.0)),
        "labelled_detections": n_items,
        "unlabelled_detections": sum(r["unlabelled"] for r in results),
        "true_people": sum(r["true_people"] for r in results),
        "people_found": sum(r["people_found"] for r in results),
        "clusters_per_person": _r(sum(r["clusters_matched"] for r in results) / found)
        if found
        else None,
        "split_people": sum(r["split_people"] for r in results),
        "missed_people": sum(r["missed_people"] for r in results),
        "false_people": sum(r["false_people"] for r in results),
        "best_frame_hits": hits,
        "best_frame_n": n_best,
        "best_frame_hit_rate": _r(hits / n_best) if n_best else None,
        "by_degradation": {k: dict(v) for k, v in sorted(by_degradation.items())},
    }
