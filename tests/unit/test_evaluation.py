"""Unit tests of the evaluation metrics (``benchmarks/metrics.py``) on hand-made cases.

No videos are built and no models run: truth dicts and system outputs are written out here,
small enough to check every number by hand.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from benchmarks.metrics import (
    BCubed,
    Detection,
    GroundTruth,
    Pick,
    SystemOutput,
    bcubed,
    box_iou,
    cluster_mapping,
    evaluate_video,
    label_detections,
    summarise,
)
from tests.support import media

# --------------------------------------------------------------------------------------------
# A tiny truth: 10 fps, 200x100 frame, 4 s.
#   person 0: [0, 2) s clean, box (10, 10, 50, 50); [2, 3) s blurred, same place.
#   person 1: [1, 3) s clean, moving from (100, 10, 140, 50) to (160, 10, 200, 50).
#   person 2: [3, 4) s "dark", box (10, 10, 50, 50) (no clean stretch).
# --------------------------------------------------------------------------------------------


def _iv(start, end, fps, box_start, box_end=None, degradation=None):
    return {
        "start_s": start,
        "end_s": end,
        "degradation": degradation,
        "face_px": 40.0,
        "start_frame": round(start * fps),
        "end_frame": round(end * fps),
        "box_start": list(box_start),
        "box_end": list(box_end or box_start),
    }


def _truth() -> GroundTruth:
    fps = 10
    return GroundTruth(
        {
            "name": "hand",
            "size": [200, 100],
            "fps": "10",
            "duration_s": 4.0,
            "intervals": {
                "0": [
                    _iv(0, 2, fps, (10, 10, 50, 50)),
                    _iv(2, 3, fps, (10, 10, 50, 50), degradation="blur"),
                ],
                "1": [_iv(1, 3, fps, (100, 10, 140, 50), (160, 10, 200, 50))],
                "2": [_iv(3, 4, fps, (10, 10, 50, 50), degradation="dark")],
            },
        }
    )


A_BOX = (10, 10, 50, 50)


def _b_box(t: float) -> tuple[float, float, float, float]:
    """Person 1's true box at t (frames 10..29, linear over 19 steps)."""
    u = (round(t * 10) - 10) / 19
    return (100 + 60 * u, 10, 140 + 60 * u, 50)


# --------------------------------------------------------------------------------------------
# BCubed
# --------------------------------------------------------------------------------------------


def test_bcubed_perfect_clustering_scores_one() -> None:
    score = bcubed(["a", "a", "b"], [0, 0, 1])
    assert (score.precision, score.recall, score.f1, score.n) == (1.0, 1.0, 1.0, 3)


def test_bcubed_one_cluster_for_everything() -> None:
    # 2 a's and 2 b's in one cluster: every item's cluster is half its class -> P = 0.5,
    # every class is wholly in the cluster -> R = 1.
    score = bcubed(["a", "a", "b", "b"], [0, 0, 0, 0])
    assert score.precision == pytest.approx(0.5)
    assert score.recall == pytest.approx(1.0)
    assert score.f1 == pytest.approx(2 / 3)


def test_bcubed_split_class_and_textbook_case() -> None:
    # Amigó et al.-style check: class a (3 items) split 2 + 1, class b (2 items) pure.
    score = bcubed(["a", "a", "a", "b", "b"], [0, 0, 1, 2, 2])
    assert score.precision == pytest.approx(1.0)
    assert score.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    # Mixed cluster: {a, a, b} and {b}.
    score = bcubed(["a", "a", "b", "b"], [0, 0, 0, 1])
    assert score.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    assert score.recall == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)


def test_bcubed_noise_items_are_singletons() -> None:
    score = bcubed(["a", "a", "a", "a"], [-1, -1, 0, 0])
    assert score.precision == pytest.approx(1.0)
    assert score.recall == pytest.approx((0.25 + 0.25 + 0.5 + 0.5) / 4)


def test_bcubed_empty_and_mismatched() -> None:
    assert bcubed([], []) == BCubed(0.0, 0.0, 0.0, 0, 0.0, 0.0)
    with pytest.raises(ValueError):
        bcubed(["a"], [0, 1])


# --------------------------------------------------------------------------------------------
# Ground truth and detection labels
# --------------------------------------------------------------------------------------------


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 10), (0, 0, 0, 10)) == 0.0


def test_ground_truth_visibility_degradation_and_moving_box() -> None:
    truth = _truth()
    assert truth.people == [0, 1, 2]
    assert truth.visible(0.5) == [0]
    assert truth.visible(1.5) == [0, 1]
    assert truth.visible(3.0) == [2]
    assert truth.degradation_at(0, 1.9) == "clean"
    assert truth.degradation_at(0, 2.0) == "blur"
    assert truth.degradation_at(0, 3.5) is None
    assert truth.box_at(1, 1.0) == pytest.approx((100, 10, 140, 50))
    assert truth.box_at(1, 2.9) == pytest.approx((160, 10, 200, 50))
    assert truth.box_at(1, 2.0) == pytest.approx(_b_box(2.0))
    assert truth.clean_intervals(0) == [(0.0, 2.0)]
    assert truth.clean_intervals(2) == []


def test_ground_truth_matches_the_media_builders_truth() -> None:
    """GroundTruth re-implements VideoTruth.face_box_at; they must agree (clipping too)."""
    fps = Fraction(25)
    built = media.VideoTruth(
        path=media.Path("x.mp4"),
        size=(320, 240),
        fps=fps,
        n_frames=50,
        rotate=0,
        people=["p"],
        cuts=[],
        intervals={
            0: [media.Interval(0.0, 2.0, None, 60.0, 0, 50, (-40, 20, 20, 80), (290, 30, 350, 90))]
        },
    )
    truth = GroundTruth(built.to_dict())
    for frame in range(50):
        t = frame / 25
        assert truth.box_at(0, t) == pytest.approx(built.face_box_at(0, t), abs=1e-9)
    assert truth.box_at(0, 2.0) is None and built.face_box_at(0, 2.0) is None


def test_label_detections_by_best_overlap() -> None:
    truth = _truth()
    dets = [
        Detection(0.5, (12, 12, 52, 52), 0),  # person 0
        Detection(1.5, (200, 80, 220, 99), 0),  # nobody there
        Detection(2.0, _b_box(2.0), 1),  # person 1
        Detection(1.0, (30, 10, 120, 50), 1),  # overlaps both weakly: IoU < 0.3 with each
        Detection(3.5, (-5, 10, 45, 50), 2),  # person 2, box sticks out: clipped first
        Detection(9.0, A_BOX, 0),  # after the end
    ]
    assert label_detections(truth, dets) == [0, None, 1, None, 2, None]


def test_label_detections_without_boxes_uses_the_only_visible_person() -> None:
    truth = GroundTruth(
        {
            "size": [640, 360],
            "fps": "23.976",
            "intervals": {
                "0": [
                    {
                        "start_s": 1.0,
                        "end_s": 2.0,
                        "degradation": "unrated",
                        "start_frame": None,
                        "end_frame": None,
                        "box_start": None,
                        "box_end": None,
                    }
                ]
            },
        }
    )
    dets = [Detection(0.5, A_BOX, 0), Detection(1.5, A_BOX, 0), Detection(2.0, A_BOX, 0)]
    assert label_detections(truth, dets) == [None, 0, None]
    assert truth.clean_intervals(0) == []


# --------------------------------------------------------------------------------------------
# People: mapping, splits, false people, best frames
# --------------------------------------------------------------------------------------------


def test_cluster_mapping_majority_false_people_and_ties() -> None:
    labels = [0, 0, 1, None, None, None, 1, 2, 2, None]
    predicted = [5, 5, 5, 6, 6, 6, 7, 8, 8, 8]
    mapping = cluster_mapping(labels, predicted, people=[5, 6, 7, 8, 9])
    # 5: two of 0, one of 1 -> 0. 6: only unlabelled -> false. 7: 1. 8: 2 vs 1 unlabelled.
    # 9 has no detections at all -> false.
    assert mapping == {5: 0, 6: None, 7: 1, 8: 2, 9: None}
    # Noise never forms a person; a tie person/unlabelled goes to the person.
    assert cluster_mapping([0, None, 1], [-1, 3, 3]) == {3: 1}


def test_evaluate_video_perfect_system() -> None:
    truth = _truth()
    dets = [Detection(t / 10, A_BOX, 0) for t in range(0, 30, 5)]
    dets += [Detection(t / 10, _b_box(t / 10), 1) for t in range(10, 30, 5)]
    dets += [Detection(3.5, A_BOX, -1)]  # person 2 is only ever dark: left unassigned
    picks = [Pick(0, 1.0, A_BOX), Pick(1, 2.0, _b_box(2.0))]
    result = evaluate_video(truth, SystemOutput(dets, picks))
    assert result["people_exact"] is True
    assert (result["true_people"], result["optional_people"]) == (2, 1)
    assert result["bcubed"]["f1"] == 1.0
    assert result["clusters_per_person"] == 1.0
    assert (result["split_people"], result["missed_people"], result["false_people"]) == (0, 0, 0)
    # Person 2 has no clean stretch: only persons 0 and 1 are scored for the best frame.
    assert (result["best_frame"]["hits"], result["best_frame"]["n"]) == (2, 2)
    assert result["by_degradation"]["blur"] == {
        "detections": 2,
        "primary": 2,
        "noise": 0,
        "other": 0,
        "appearances": 1,
        "appearances_seen": 1,
    }
    assert result["by_degradation"]["clean"]["appearances"] == 2
    assert result["by_degradation"]["clean"]["appearances_seen"] == 2


def test_identifiable_bcubed_ignores_unidentifiable_faces_left_unassigned() -> None:
    truth = _truth()
    dets = [Detection(t / 10, A_BOX, 0) for t in range(0, 20, 5)]  # clean: person 0
    dets += [Detection(2.2, A_BOX, -1), Detection(2.6, A_BOX, -1)]  # blurred: unassigned
    dets += [Detection(t / 10, _b_box(t / 10), 1) for t in range(10, 30, 5)]
    result = evaluate_video(truth, SystemOutput(dets, [Pick(0, 1.0, A_BOX), Pick(1, 2.0)]))
    assert result["bcubed"]["recall"] < 0.9
    assert result["bcubed_identifiable"]["f1"] == 1.0
    assert result["bcubed_identifiable"]["n"] == 8


def test_a_person_made_only_of_unidentifiable_faces_is_a_phantom() -> None:
    truth = _truth()
    dets = [Detection(t / 10, A_BOX, 0) for t in range(0, 20, 5)]
    dets += [Detection(t / 10, _b_box(t / 10), 1) for t in range(10, 30, 5)]
    dets += [Detection(3.2, A_BOX, 2), Detection(3.6, A_BOX, 2)]  # person 2: dark only
    picks = [Pick(0, 1.0, A_BOX), Pick(1, 2.0, _b_box(2.0)), Pick(2, 3.5, A_BOX)]
    result = evaluate_video(truth, SystemOutput(dets, picks))
    assert result["people_exact"] is False
    assert (result["false_people"], result["phantom_people"]) == (1, 1)
    assert result["missed_people"] == 0


def test_required_people_need_identifiable_faces_in_two_sampled_frames() -> None:
    fps = 25
    truth = GroundTruth(
        {
            "size": [200, 100],
            "fps": "25",
            "duration_s": 6.0,
            "intervals": {
                "0": [_iv(0.0, 0.4, fps, A_BOX)],  # a glimpse: one sample (t=0)
                "1": [_iv(1.1, 1.6, fps, A_BOX), _iv(3.2, 3.6, fps, A_BOX)],  # two flashes
                "2": [_iv(4.0, 6.0, fps, A_BOX, degradation="occluded")],  # never clean
                "3": [_iv(2.0, 2.6, fps, A_BOX, degradation="soft_blur")],  # soft: fine
            },
        }
    )
    assert truth.sample_times(2.0)[:4] == [0.0, 0.52, 1.0, 1.52]
    assert [truth.identifiable_frames(p, 2.0) for p in range(4)] == [1, 2, 0, 2]
    assert truth.required_people(2.0) == [1, 3]
    assert truth.required_people(4.0) == [0, 1, 3]  # at 4 samples/s the glimpse counts


def test_evaluate_video_counts_splits_false_people_misses_and_wrong_frames() -> None:
    truth = _truth()
    dets = [
        # Person 0 split into clusters 0 (clean) and 3 (blurred); one face left as noise.
        Detection(0.0, A_BOX, 0),
        Detection(0.5, A_BOX, 0),
        Detection(1.0, A_BOX, 0),
        Detection(1.5, A_BOX, -1),
        Detection(2.0, A_BOX, 3),
        Detection(2.5, A_BOX, 3),
        # Person 1 in cluster 1, whose pick lands on person 0's face.
        Detection(1.0, _b_box(1.0), 1),
        Detection(2.0, _b_box(2.0), 1),
        # Cluster 2 is a false person: background detections.
        Detection(1.2, (150, 60, 190, 95), 2),
        Detection(1.4, (150, 60, 190, 95), 2),
        # Person 2 (dark) not detected at all.
    ]
    picks = [
        Pick(0, 2.5, A_BOX),  # the blurred stretch: a miss
        Pick(1, 1.0, A_BOX),  # clean time of person 1 but the box is person 0's: a miss
        Pick(2, 1.2, (150, 60, 190, 95)),
        Pick(3, 2.0, A_BOX),
    ]
    result = evaluate_video(truth, SystemOutput(dets, picks))
    assert result["people_found"] == 4 and result["people_exact"] is False
    assert result["clusters_per_person"] == 1.5  # 0 -> {0, 3}, 1 -> {1}
    assert result["split_people"] == 1
    assert result["missed_people"] == 0  # person 2 (only dark) is optional
    assert result["optional_people"] == 1
    assert result["false_people"] == 1  # cluster 2
    assert result["unlabelled"] == 2 and result["labelled"] == 8
    assert result["noise_labelled"] == 1
    best = {b["true_person"]: b for b in result["best_frame"]["picks"]}
    assert best[0]["person"] == 0  # 3 faces in cluster 0 vs 2 in cluster 3
    assert best[0]["degradation"] == "blur" and best[0]["hit"] is False
    assert best[1]["degradation"] == "clean" and best[1]["box_ok"] is False
    assert best[1]["hit"] is False
    assert (result["best_frame"]["hits"], result["best_frame"]["n"]) == (0, 2)
    assert result["by_degradation"]["clean"] == {
        "detections": 6,
        "primary": 5,
        "noise": 1,
        "other": 0,
        "appearances": 2,
        "appearances_seen": 2,
    }
    # Person 2's dark stretch was never detected.
    assert result["by_degradation"]["dark"] == {
        "detections": 0,
        "primary": 0,
        "noise": 0,
        "other": 0,
        "appearances": 1,
        "appearances_seen": 0,
    }
    assert result["by_degradation"]["blur"]["other"] == 2
    # BCubed over the 8 labelled faces: person 0's six are split 3 / 1 (noise) / 2.
    p0 = (3 / 3) * 3 + (1 / 1) * 1 + (2 / 2) * 2
    r0 = (3 / 6) * 3 + (1 / 6) * 1 + (2 / 6) * 2
    assert result["bcubed"]["precision"] == pytest.approx((p0 + 2) / 8, abs=1e-4)
    assert result["bcubed"]["recall"] == pytest.approx((r0 + 2) / 8, abs=1e-4)


def test_evaluate_video_without_faces() -> None:
    truth = GroundTruth({"size": [64, 48], "fps": "25", "intervals": {}})
    empty = evaluate_video(truth, SystemOutput([], []))
    assert empty["people_exact"] is True and empty["bcubed"]["n"] == 0
    ghost = evaluate_video(truth, SystemOutput([Detection(0.0, (0, 0, 9, 9), 0)], [Pick(0, 0.0)]))
    assert ghost["people_exact"] is False
    assert ghost["false_people"] == 1 and ghost["unlabelled"] == 1


def test_summarise_pools_items_and_people() -> None:
    truth = _truth()
    perfect = evaluate_video(
        truth,
        SystemOutput(
            [Detection(0.0, A_BOX, 0), Detection(1.0, _b_box(1.0), 1), Detection(3.5, A_BOX, -1)],
            [Pick(0, 0.0, A_BOX), Pick(1, 1.0, _b_box(1.0))],
        ),
    )
    lumped = evaluate_video(
        truth,
        SystemOutput([Detection(0.0, A_BOX, 0), Detection(1.0, _b_box(1.0), 0)], [Pick(0, 0.0)]),
    )
    assert lumped["bcubed"]["precision"] == 0.5 and lumped["bcubed"]["recall"] == 1.0
    summary = summarise([perfect, lumped])
    assert summary["videos"] == 2
    assert summary["people_exact_rate"] == 0.5
    assert summary["labelled_detections"] == 5
    assert summary["bcubed_precision"] == pytest.approx((3 + 1) / 5)
    assert summary["bcubed_recall"] == 1.0
    assert summary["bcubed_f1_macro"] == pytest.approx((1.0 + 2 / 3) / 2, abs=1e-4)
    # lumped: cluster 0 maps to person 0 (tie 1:1 -> lower index); person 1 missed (person
    # 2, only ever dark, is optional).
    assert summary["missed_people"] == 1
    assert summary["best_frame_hits"] == 3 and summary["best_frame_n"] == 4
    assert summary["by_degradation"]["clean"]["detections"] == 4
    # 2 clean stretches per video; "lumped" saw person 0's, and person 1's clean stretch.
    assert summary["by_degradation"]["clean"]["appearances"] == 4
    assert summary["by_degradation"]["clean"]["appearances_seen"] == 4
    assert summary["by_degradation"]["blur"]["appearances_seen"] == 0
