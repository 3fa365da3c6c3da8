"""Filtering an existing dataset the way the loop filters new tasks.

Records are decided in file order: a record is dropped if a heuristic rule rejects it, or if
it is a near-duplicate of an earlier kept record (or of any record of an ``against`` dataset).
The input is read twice: first (read.py) to apply the heuristic rules and turn the
instructions (and, with ``key`` instruction+input, inputs) into token ids for ``dedup``, which
decides the records a block at a time; then to write each record where its decision sends it (a
JSONL record is copied as written). Only flat arrays are held, never the records. The second read
runs in a thread while ``dedup`` decides the rest (write.py), unless a judge must first score
every kept record.

``key`` says what a near-duplicate is. ``instruction`` (the default): the instructions'
ROUGE-L is above the threshold, so an Alpaca export, which repeats a task's instruction
once per instance, keeps one instance per task. ``instruction+input``: the instructions'
ROUGE-L is above the threshold and so is the inputs' (two empty inputs are equal, 1.0; an
empty and a non-empty one, 0.0; a seed task's input is its inputs joined by "\\n", but an
``against`` seed task counts once per instance, so an Alpaca record equal to any of its instances
matches), so instances whose inputs differ are kept. Scoring instruction and input joined into one
text would not do: a short or empty input hardly changes it, and every instance of a
task still scores above the threshold. The heuristic rules look at the instruction alone.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selfinstruct.config import LENGTH_DEFAULTS
from selfinstruct.dedup import kernels, layout
from selfinstruct.dedup.against import Reference, add_dataset
from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.dedup.engines import ENGINES
from selfinstruct.dedup.greedy import Decisions, deduplicate
from selfinstruct.dedup.index import Matches
from selfinstruct.dedup.read import Options, Screened, ScreenError, read_record, screen
from selfinstruct.dedup.result import FilterError, FilterReport
from selfinstruct.dedup.targets import check_paths, targets_of
from selfinstruct.dedup.write import Writing
from selfinstruct.endpoint.progress import count_lines
from selfinstruct.formats.records import iter_records
from selfinstruct.generation.judge import JudgeOptions, score_records
from selfinstruct.formats.task import Instance

ONLY = ("dedup", "heuristics")
KEYS = ("instruction", "instruction+input")


def filter_dataset(input: Path | str | list[Path | str], output: Path | str, *, threshold: float = 0.7,
                   lang: str = "auto", only: str | None = None, against: Path | str | list[Path | str] | None = None,
                   field: str | None = None, dropped_output: Path | str | None = None,
                   key: str = "instruction", progress: Callable[[str, int, int], None] | None = None,
                   overwrite: bool = False, engine: str = "local", workers: int | None = None,
                   judge: JudgeOptions | None = None, notify: Callable[[str], None] = lambda line: None) -> FilterReport:
    """Write the kept records to ``output`` (in the input's layout) and the dropped ones, with reasons,
    to ``dropped_output`` (default: targets.dropped_beside: ``clean.jsonl`` drops to ``clean.dropped.jsonl``,
    any other name to the name and ``.dropped.jsonl``).

    ``input`` may be a list: the files are deduplicated together, in the order given. ``output`` is an
    existing directory, which gets each input's kept records under its name (and its dropped ones beside
    them), or one file for all (in the first input's layout; each dropped entry names its ``file``).
    ``against`` is one dataset or a list of them; ``key`` is one of KEYS (see above); ``progress``,
    if given, is called with (stage, done, total) as the work goes: stage ``read`` and ``write`` count
    the input's lines, ``dedup`` its records. An existing output or dropped file is replaced only with
    ``overwrite``, a run's own files never. Nothing is read or written if any path is unusable.
    ``engine`` (see engines.ENGINES: ``local``, or ``ray``) and ``workers`` say where deduplication runs
    (``workers`` processes also read a large JSONL input, see read.py); the result is the same, byte
    for byte.
    ``judge`` (judge.JudgeOptions) scores each kept record 1-5 with a model: a kept record gets a ``judge``
    field; with ``min_score``, one scored below goes to the dropped records (``low_score``). The judge's
    answers are journaled in its directory, so filtering again asks only for what is new."""
    started = time.monotonic()
    sources = [Path(p) for p in (input if isinstance(input, (list, tuple)) else [input])]
    given = [against] if isinstance(against, (str, os.PathLike)) else list(against or ())
    againsts = [Path(p) for p in given]
    if not sources:
        raise FilterError("no input file given")
    if lang not in ("auto", *LENGTH_DEFAULTS):
        raise FilterError(f"unknown lang {lang!r}; choose auto, zh or en")
    if only not in (None, *ONLY):
        raise FilterError(f"unknown --only {only!r}; choose dedup or heuristics")
    if key not in KEYS:
        raise FilterError(f"unknown --key {key!r}; choose instruction or instruction+input")
    if not 0.0 <= threshold <= 1.0:
        raise FilterError(f"threshold must be between 0 and 1, got {threshold}")
    if engine not in ENGINES:
        raise FilterError(f"unknown --engine {engine!r}; choose {' or '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise FilterError(f"--workers must be at least 1, got {workers}")
    targets = targets_of(sources, output, Path(dropped_output) if dropped_output else None)
    output = Path(output)
    judge_dir = _judge_directory(judge, output) if judge else None
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise FilterError("--engine ray needs Ray: pip install 'selfinstruct[ray]'")
    for out, dropped in dict.fromkeys(targets):
        for source in sources:
            check_paths(source, out, dropped, againsts, overwrite)
    tell = progress or (lambda stage, done, total: None)
    corpus = CorpusBuilder(use_inputs=key == "instruction+input")
    reference = Reference()
    for path, name in zip(againsts, given):
        add_dataset(corpus, reference, path, field, key, os.fspath(name))
    lines = [count_lines(source) if progress else 0 for source in sources]
    options = Options(field, key, lang, only)
    screened = []
    for source, count in zip(sources, lines):
        screened.append(_screen(source, options, corpus, tell, count, sum(s.records for s in screened), workers))
    total = sum(s.records for s in screened)
    report = FilterReport(output=output, dropped_output=targets[0][1], total=total)
    deduplicating = only != "heuristics" and total > 0
    found = Decisions.empty(total) if deduplicating else Decisions(np.ones(total, bool), Matches.empty(total))
    writing = Writing(found, reference, field, key, report, tell, list(zip(sources, screened)),
                      min_score=judge.min_score if judge else None)

    def write() -> None:
        for target in dict.fromkeys(targets):
            writing.write(target, [(source, part, count) for source, part, count, t
                                   in zip(sources, screened, lines, targets) if t == target])
            report.outputs.append(target)

    try:
        if deduplicating and judge is None:
            writing.beside(write)  # each record is written once it is decided, while the rest are
        if deduplicating:
            if not kernels.compiled(vars(kernels), vars(layout)):
                notify("filter: compiling its deduplication kernels, once per install (about half a minute "
                       "on 2 cores); later runs start at once")
            deduplicate(corpus.build(), threshold, engine, workers, into=found,
                        progress=lambda done, total: (tell("dedup", done, total), writing.advance(done)))
            report.notes = found.notes
        if judge is not None:
            items = _kept_tasks(sources, screened, found.kept, field)
            writing.scores = score_records(items, judge, judge_dir, notify=notify,
                                           progress=lambda done, total: tell("judge", done, total))
        if writing.thread is None:
            write()
    except BaseException:
        writing.finish(failed=True)
        raise
    writing.finish()
    report.seconds = time.monotonic() - started
    return report


def _judge_directory(judge: JudgeOptions, output: Path) -> Path:
    """Where the judge's answers go; FilterError, before anything is read or written, if it cannot work."""
    if judge.min_score is not None and not 1 <= judge.min_score <= 5:
        raise FilterError(f"--min-score must be from 1 to 5, got {judge.min_score}")
    directory = Path(judge.directory or output.with_name(output.stem + ".judge"))
    if directory.exists() and not directory.is_dir():
        raise FilterError(f"{directory}: --judge-dir is a file; give a directory for the judge's answers")
    if not directory.parent.is_dir():
        raise FilterError(f"{directory}: cannot write there: {directory.parent} is not an existing directory")
    if (directory / "config.json").exists():
        raise FilterError(f"{directory} is a run's directory; give the judge a --judge-dir of its own")
    return directory


def _kept_tasks(sources: list[Path], screened: list[Screened], kept: np.ndarray,
                field: str | None) -> list[tuple[int, str, list[Instance]]]:
    """(record number, instruction, instances) of each kept record, for the judge: a third read."""
    found = []
    for source, part in zip(sources, screened):
        for number, (_, record) in enumerate(iter_records(source, skip_bad_lines=True)):
            overall = part.first + number
            if number < part.records and not part.dropped[number] and kept[overall]:
                instruction, instances = read_record(record, field)
                found.append((overall, instruction, instances or []))
    return found


def _screen(input: Path, options: Options, corpus: CorpusBuilder, tell, lines: int, first: int,
            workers: int | None) -> Screened:
    try:
        screened = screen(input, options, corpus, first, workers, lambda line: tell("read", line, lines))
    except ScreenError as exc:
        raise FilterError(str(exc)) from None
    if screened.records and not screened.parsed_any:
        raise FilterError(f"{input}: no line is valid JSON; is this a JSON or JSONL file?")
    if screened.parsed_any and not screened.field_seen:
        raise FilterError(f"{input}: no record has the field '{options.field or 'instruction'}'; "
                          "name the instruction field with --field")
    tell("read", lines, lines)
    return screened

