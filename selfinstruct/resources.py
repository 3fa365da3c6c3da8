"""Where the bundled seeds and prompts live.

In a wheel they are packaged under ``selfinstruct/_data``; in a source checkout
(or an editable install) they sit at the repository root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """Path of a bundled folder (``seeds`` or ``prompts``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} not found; the installation is incomplete")


def default_seeds(lang: str) -> Path:
    return bundled("seeds") / f"{lang}_seed_tasks.jsonl"


def default_prompts() -> Path:
    return bundled("prompts")
