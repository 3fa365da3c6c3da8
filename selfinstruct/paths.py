"""What kind of file a path names: selfinstruct reads and replaces regular files only.

A dataset is read more than once (filter reads it twice, a seed file is hashed and read), which a
FIFO or a device cannot give; and an output is written beside its target and renamed over it,
which would replace a device such as /dev/null with a regular file. So an input or an existing
output that is not a regular file is refused up front, with what it is.
"""

from __future__ import annotations

import os
import stat

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
    regular file, since the new one is renamed over it."""
    kind = special_kind(path)
    if kind is None or kind == "a directory":
        return None  # the callers word a directory their own way
    return (f"{os.fspath(path)} is {kind}, not a regular file; outputs are written whole and renamed into "
            "place, which would replace it: give a file path")
