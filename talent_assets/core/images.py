"""Talent-frame images: face crops with margin, the contact sheet, JPEG encoding."""

from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = 92


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def decode_image(data: bytes) -> np.ndarray | None:
    """BGR pixels of encoded image bytes (JPEG, PNG, ...); None when they are not an image."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None


def crop_face(image: np.ndarray, bbox: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """Square crop around a face box, widened by ``margin`` of its size on each side.

    Parts of the square outside the frame are filled by replicating the edge, so a face near
    the border is not shifted off-centre in its crop.
    """
    x1, y1, x2, y2 = (float(v) for v in bbox)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    side_px = max(16, round(side))
    left, top = round(cx - side_px / 2.0), round(cy - side_px / 2.0)
    right, bottom = left + side_px, top + side_px
    height, width = image.shape[:2]
    pad = max(0, -left, -top, right - width, bottom - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return image[top + pad : bottom + pad, left + pad : right + pad].copy()


def contact_sheet(
    crops: list[np.ndarray], labels: list[str], tile: int = 200, columns: int = 6
) -> np.ndarray:
    """All people side by side: one labelled square tile per face crop."""
    if not crops:
        sheet = np.full((tile // 2, tile * 2, 3), 32, dtype=np.uint8)
        cv2.putText(
            sheet,
            "no people found",
            (12, tile // 4 + 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (230, 230, 230),
            2,
            cv2.LINE_AA,
        )
        return sheet
    columns = min(columns, len(crops))
    rows = (len(crops) + columns - 1) // columns
    label_h = 28
    sheet = np.full((rows * (tile + label_h), columns * tile, 3), 24, dtype=np.uint8)
    for i, (crop, label) in enumerate(zip(crops, labels, strict=True)):
        r, c = divmod(i, columns)
        y, x = r * (tile + label_h), c * tile
        sheet[y : y + tile, x : x + tile] = cv2.resize(
            crop, (tile, tile), interpolation=cv2.INTER_AREA
        )
        cv2.putText(
            sheet,
            label,
            (x + 6, y + tile + 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (235, 235, 235),
            1,
            cv2.LINE_AA,
        )
    return sheet
