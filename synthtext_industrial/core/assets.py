"""Where the bundled fonts, backgrounds and recipes live.

In a source checkout (or an editable install) they sit at the top of the
repository; a built wheel carries copies under `synthtext_industrial/_assets/`.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # synthtext_industrial/
ASSET_KINDS = ("fonts", "backgrounds", "recipes")


@cache
def bundled_dir(kind: str) -> Path:
    """The folder of bundled `fonts`, `backgrounds` or `recipes`."""
    if kind not in ASSET_KINDS:
        raise ValueError(f"unknown asset kind {kind!r}; expected one of {', '.join(ASSET_KINDS)}")
    for candidate in (_PACKAGE_DIR / "_assets" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {kind} not found next to {_PACKAGE_DIR}; the installation is incomplete")


def bundled_roots() -> list[Path]:
    """Folders every recipe may read from, whatever --assets-root says."""
    roots = []
    for kind in ASSET_KINDS:
        try:
            roots.append(bundled_dir(kind))
        except FileNotFoundError:
            pass
    return roots
