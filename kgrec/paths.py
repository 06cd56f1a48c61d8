"""Path checks made before long work starts, so that its results are not lost at the end."""

from __future__ import annotations

from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else the nearest of its parents that does (the root at worst).

    Callers ask of it whether the output can go there: a file in the way, a folder that is not writable.
    """
    return next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
