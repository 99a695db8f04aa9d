"""The face engine: InsightFace SCRFD detection + ArcFace recognition on onnxruntime.

We load the pack through ``FaceAnalysis`` but call its detector and recogniser directly, so
recognition runs once per batch of faces instead of once per face, and only on faces that
pass the gates (a face that will never be used is not worth embedding).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modal_gpu.model_packs import BUNDLED, default_model_root, ensure_model_pack
from modal_gpu.quality import (
    estimate_pose,
    eye_mouth_ratio,
    face_quality,
    laplacian_sharpness,
    mean_brightness,
    visible_fraction,
)
from modal_gpu.video import SampledFrame


@dataclass(frozen=True)
class DetectedFace:
    """One face in one analysed frame. Coordinates are display pixels of the full frame."""

    frame_index: int
    face_index: int
    timestamp_s: float
    bbox: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # 5 × 2
    det_score: float
    embedding: np.ndarray  # 512, L2-normalised
    embedding_norm: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll: float
    face_quality: float


# SCRFD's score gates. insightface's default, 0.5, is the strong gate: such a detection is
# always kept. Measured on the evaluation set (15 videos, every sampled frame), no false
# detection scored 0.3 or more, while real faces scored 0.4-0.5: a 72-px face in a 720p group
# shot (0.46 at 640 px; the 0.5 gate lost that person altogether), but also faces half out of
# frame or blurred, which embed badly and left stray clusters. So a weak detection
# (0.4 <= score < 0.5) is kept only when the rest of it is a clear face: face_quality of at
# least WEAK_DETECTION_MIN_QUALITY (the small face: 44; the half-out and blurred ones: <= 21).
DEFAULT_DET_THRESHOLD = 0.5
DEFAULT_WEAK_DET_THRESHOLD = 0.4
WEAK_DETECTION_MIN_QUALITY = 30.0


def detector_input_size(shape: tuple[int, ...], det_size: int) -> tuple[int, int]:
    """SCRFD input (width, height): the longer side ``det_size``, the other side following
    the frame's aspect ratio, rounded up to SCRFD's stride of 32.

    A square 640×640 input letterboxes a 16:9 frame into 45 % padding; fitting the input to
    the frame spends the same resolution on the picture for about half the compute.
    """
    height, width = shape[:2]
    scale = det_size / max(height, width)
    fit = (
        max(32, math.ceil(width * scale / 32) * 32),
        max(32, math.ceil(height * scale / 32) * 32),
    )
    return min(fit[0], det_size), min(fit[1], det_size)


def default_providers() -> list[str]:
    """CUDA first when onnxruntime has it (the Modal image), else the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class FaceEngine:
    """Detect, gate, align and embed faces with one InsightFace model pack."""

    def __init__(
        self,
        pack: str = BUNDLED,
        *,
        model_root: Path | None = None,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 1,
        det_size: int = 640,
        det_threshold: float = DEFAULT_DET_THRESHOLD,
        weak_det_threshold: float = DEFAULT_WEAK_DET_THRESHOLD,
        min_face_px: float = 16.0,
    ) -> None:
        import onnxruntime
        from insightface.app import FaceAnalysis

        self.pack = pack
        self.det_size = det_size
        self.det_threshold = det_threshold
        self.weak_det_threshold = min(weak_det_threshold, det_threshold)
        self.min_face_px = min_face_px
        providers = list(providers or default_providers())
        options = onnxruntime.SessionOptions()
        # One thread per session on the CPU: measured here, two intra-op threads beside the
        # decoder thread ran 2.5x slower than one (they spin and fight for the two cores).
        # Parallelism comes from chunks in separate processes instead. 0 = ORT's default.
        options.intra_op_num_threads = intra_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        folder = ensure_model_pack(pack, model_root or default_model_root())
        analysis = FaceAnalysis(
            name=str(folder),
            allowed_modules=["detection", "recognition"],
            providers=providers,
            sess_options=options,
        )
        ctx_id = 0 if providers[0] == "CUDAExecutionProvider" else -1
        analysis.prepare(
            ctx_id=ctx_id, det_thresh=self.weak_det_threshold, det_size=(det_size, det_size)
        )
        self._detector = analysis.models["detection"]
        self._recogniser = analysis.models["recognition"]
        self.providers = providers

    def detect(self, image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """SCRFD alone on one analysis image, at the aspect-fitted input size: boxes (n, 5:
        x1, y1, x2, y2, score; image pixels) and landmarks (n, 5, 2), weak ones included."""
        return self._detector.detect(
            image, input_size=detector_input_size(image.shape, self.det_size)
        )

    def analyse(self, frames: Sequence[SampledFrame]) -> list[DetectedFace]:
        """Detect faces in each frame, gate them, then embed every kept face at once."""
        # insightface 2.1 calls a scikit-image API deprecated in 0.26; harmless, and noisy.
        warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")
        pending: list[_Candidate] = []
        for frame in frames:
            boxes, points = self.detect(frame.image)
            if boxes is None or len(boxes) == 0:
                continue
            order = np.argsort(-boxes[:, 4], kind="stable")
            face_index = 0
            for i in order:
                score = float(boxes[i, 4])
                box = boxes[i, :4].astype(np.float64)
                kps = points[i].astype(np.float64)
                height_px = (box[3] - box[1]) * frame.scale
                if score < self.weak_det_threshold or height_px < self.min_face_px:
                    continue
                candidate = self._measure(frame, face_index, box, kps, score)
                weak = score < self.det_threshold
                if weak and candidate.quality < WEAK_DETECTION_MIN_QUALITY:
                    continue
                pending.append(candidate)
                face_index += 1
        if not pending:
            return []
        raw = np.asarray(self._recogniser.get_feat([c.aligned for c in pending]), np.float32)
        norms = np.linalg.norm(raw, axis=1)
        embeddings = raw / np.maximum(norms, 1e-12)[:, None]
        return [
            DetectedFace(
                frame_index=c.frame.frame_index,
                face_index=c.face_index,
                timestamp_s=c.frame.timestamp_s,
                bbox=c.box * c.frame.scale,
                landmarks=c.kps * c.frame.scale,
                det_score=c.score,
                embedding=emb,
                embedding_norm=float(norm),
                sharpness=c.sharpness,
                brightness=c.brightness,
                yaw=c.pose[0],
                pitch=c.pose[1],
                roll=c.pose[2],
                face_quality=c.quality,
            )
            for c, emb, norm in zip(pending, embeddings, norms, strict=True)
        ]

    @staticmethod
    def _measure(
        frame: SampledFrame,
        face_index: int,
        box: np.ndarray,
        kps: np.ndarray,
        score: float,
    ) -> _Candidate:
        """Align one detected face and measure its quality (everything but the embedding)."""
        from insightface.utils import face_align

        aligned = face_align.norm_crop(frame.image, landmark=kps, image_size=112)
        height, width = frame.image.shape[:2]
        yaw, pitch, roll = estimate_pose(kps)
        sharp = laplacian_sharpness(aligned)
        bright = mean_brightness(aligned)
        quality = face_quality(
            det_score=score,
            face_height_px=(box[3] - box[1]) * frame.scale,
            sharpness=sharp,
            yaw=yaw,
            pitch=pitch,
            brightness=bright,
            visible=visible_fraction(box, width, height),
            eye_ratio=eye_mouth_ratio(kps),
            box_aspect=(box[2] - box[0]) / max(box[3] - box[1], 1e-6),
        )
        return _Candidate(
            frame, face_index, box, kps, score, aligned, sharp, bright, (yaw, pitch, roll),
            quality.score,
        )  # fmt: skip


@dataclass(frozen=True)
class _Candidate:
    """A detected, aligned and measured face waiting for its embedding."""

    frame: SampledFrame
    face_index: int
    box: np.ndarray  # analysis-image pixels
    kps: np.ndarray
    score: float
    aligned: np.ndarray
    sharpness: float
    brightness: float
    pose: tuple[float, float, float]
    quality: float
