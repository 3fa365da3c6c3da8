"""Where ``filter`` writes each input's kept and dropped records, and the checks, before anything is
read, that every path can be used and that no two name the same file."""

from __future__ import annotations

import os
from pathlib import Path

from selfinstruct.dedup.result import FilterError
from selfinstruct.paths import special_kind, unwritable_target
from selfinstruct.store.rundir import is_file_of_a_run


def targets_of(sources: list[Path], output: str | os.PathLike, dropped: Path | None) -> list[tuple[Path, Path]]:
    """Each input's (output, dropped-records file): into an existing directory, each input's under its own
    name; else one file for all. FilterError if two inputs' files would be one file."""
    folder = Path(output).is_dir()
    if os.fspath(output).endswith(("/", os.sep)) and not folder:  # Path() would drop the slash: a file
        raise FilterError(f"{os.fspath(output)}: no such directory; create it first, or name a file")
    output = Path(output)
    if not folder:
        return [(output, dropped or dropped_beside(output))] * len(sources)
    if dropped:
        if len(sources) > 1:
            raise FilterError("--dropped names one file; with an output directory each input's dropped records "
                              "go beside its kept ones")
        return [(output / sources[0].name, dropped)]  # check_paths tells it from the output
    targets = [(output / s.name, dropped_beside(output / s.name)) for s in sources]
    claimed: dict[Path, Path] = {}
    for source, paths in zip(sources, targets):
        for path in paths:
            if path in claimed:
                raise FilterError(f"{path}: both {claimed[path]} and {source} would write it; rename one, or "
                                  "filter them apart or into one file")
            claimed[path] = source
    return targets


def dropped_beside(output: Path) -> Path:
    """An output's dropped-records file: its ``.jsonl`` made ``.dropped.jsonl``, or ``.dropped.jsonl`` added
    to any other name, so that ``clean.json`` and ``clean.jsonl`` never share one."""
    name = output.name.removesuffix(".jsonl") if output.suffix == ".jsonl" else output.name
    return output.with_name(name + ".dropped.jsonl")


def check_paths(input: Path, output: Path, dropped: Path, againsts: list[Path], overwrite: bool) -> None:
    """Raise FilterError, before anything is written, if a path cannot be used or two would be the same file."""
    if not input.exists():
        raise FilterError(f"{input}: no such file")
    if input.is_dir():
        raise FilterError(f"{input}: is a directory, not a dataset file")
    kind = special_kind(input)
    if kind:
        raise FilterError(f"{input}: is {kind}, not a regular file; filter reads its input twice, so save it to a "
                          "file first")
    for path in (output, dropped):
        if path.is_dir():
            raise FilterError(f"{path}: is a directory; give a file name to write to")
        if problem := unwritable_target(path):
            raise FilterError(problem)
        if not path.parent.is_dir():
            raise FilterError(f"{path}: cannot write there: {path.parent} is not an existing directory")
    sources = [("input", input), *(("--against file", path) for path in againsts)]
    targets = [("output", output), ("dropped-records file", dropped)]
    pairs = [(s, t) for s in sources for t in targets] + [(targets[0], targets[1])]
    for (source_role, source), (role, target) in pairs:
        if _same_file(source, target):
            raise FilterError(f"{target}: the {role} is the same file as the {source_role} ({source}); "
                              "choose another path")
    for path, option in ((output, "--output"), (dropped, "--dropped")):
        if is_file_of_a_run(path):
            raise FilterError(f"{path} is one of a run's own files; choose another {option}")
        if os.path.lexists(path) and not overwrite:
            raise FilterError(f"{path} exists; pass --overwrite to replace it, or choose another {option}")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
