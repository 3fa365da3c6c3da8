"""What kind of file a path names: selfinstruct reads and replaces regular files only.

A dataset is read more than once (filter reads it twice, a seed file is hashed and read), which a
FIFO or a device cannot give; and an output is written beside its target and renamed over it,
which would replace a device such as /dev/null with a regular file. So an input or an existing
output that is not a regular file is refused up front, with what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_SYSTEM = ("/dev/", "/proc/", "/sys/")
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: os.PathLike | str) -> str | None:
    """What ``path`` is if it exists and is not a regular file (links followed), e.g. "a FIFO (named
    pipe)"; None for a regular file or a path that does not exist (yet)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, a dangling link, unreadable, or a NUL in the name
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def unwritable_target(path: os.PathLike | str) -> str | None:
    """Why an output cannot be written at ``path`` by replacing it, or None: an existing target must be a
    regular file, since the new one is renamed over it, and a path under /dev or /proc (``/dev/stdout``,
    which links to whatever standard output is) is never one to replace."""
    kind = special_kind(path)
    if kind == "a directory":
        return None  # the callers word a directory their own way
    if kind is not None:
        return (f"{os.fspath(path)} is {kind}, not a regular file; outputs are written whole and renamed into "
                "place, which would replace it: give a file path")
    top = next((top for top in _SYSTEM if os.path.abspath(path).startswith(top)), None)
    if top:
        return (f"{os.fspath(path)} is under {top}, not a file of yours; outputs are written whole and renamed "
                "into place: give a file path")
    return None


def landing(path: os.PathLike | str) -> Path:
    """Where writing ``path`` lands: links followed, so that replacing the file keeps a link to it a link
    (renaming over the link itself would replace the link)."""
    return Path(os.path.realpath(path))
