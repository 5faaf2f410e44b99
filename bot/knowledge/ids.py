"""Article ids: lowercase ascii slugs that double as file names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slug_for(path: str, title: str) -> str:
    """A stable id for an imported article: its file name when that is a usable slug, else a title hash."""
    stem = Path(path).stem.lower()
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    if stem and stem not in {"input", "stdin", "index", "article"} and len(stem) >= 3:
        return stem
    return "article-" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:10]
