"""Writing a run's accepted tasks in the formats training code reads, with a dataset card.

Every format has one record per instance, except ``seeds`` (one per task, so a run can seed
another). The chat formats (``sharegpt``, ``messages``) have one user turn, PROMPT, and one
assistant turn, the output. PROMPT is the instruction alone when the input is empty, otherwise
instruction + "\\n\\n" + input: the instruction, a blank line, the input. The Alpaca formats and
``hf`` keep instruction, input and output as separate fields.

Formats live in FORMATS (name -> Format), the one place to add one. Each export also writes a
Markdown dataset card, README.md next to the file (``hf``: inside the directory), whose first line
is CARD_MARKER: a README.md without it is not ours and is never overwritten. Several exports can
share a directory, so the card lists every export of the run in it (a card of another run is never
replaced): its second line is an HTML comment holding that list as JSON, which the next export reads,
updates and renders again.

An existing target is replaced only when it is ours for sure: the format's default name in the run
directory (an earlier export), or the caller said so (``overwrite``). A run's own files never are.
Nothing is written until every target has been checked; files are replaced atomically, and an
``hf`` directory is built under a temporary sibling name and renamed into place.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jsonlines

from selfinstruct.config import read_settings, redact_url
from selfinstruct.store.journal import Journal, JournalDamaged, JournalError, write_atomic
from selfinstruct.paths import special_kind, unwritable_target
from selfinstruct.formats.alpaca import alpaca_records
from selfinstruct.formats.chat import chat_records
from selfinstruct.formats.records import invalid_text
from selfinstruct.store.rundir import is_file_of_a_run, is_run_file, read_config, run_identity
from selfinstruct.errors import BadInput
from selfinstruct.formats.seed_layout import read_seed, seed_records
from selfinstruct.formats.task import Task

CARD_NAME = "README.md"
CARD_MARKER = "<!-- selfinstruct dataset card -->"
HF_COLUMNS = ("instruction", "input", "output")
HF_FILES = ("state.json", "dataset_info.json")  # what Dataset.save_to_disk writes, besides data-*.arrow


class ExportError(BadInput, ValueError):
    """An export that cannot be done as asked: nothing was written."""


def _json_array(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def _jsonl(records: list[dict]) -> str:
    buffer = io.StringIO()
    with jsonlines.Writer(buffer, dumps=functools.partial(json.dumps, ensure_ascii=False)) as writer:
        writer.write_all(records)
    return buffer.getvalue()


def _file(serialize: Callable[[list[dict]], str]):
    """A writer of one file, and its card next to it."""
    def write(path: Path, records: list[dict], card: str | None) -> None:
        write_atomic(path, serialize(records))
        if card is not None:
            write_atomic(path.parent / CARD_NAME, card)
    return write


def _save_hf(path: Path, records: list[dict], card: str | None) -> None:
    """A datasets Dataset saved to a temporary sibling, then renamed to ``path``: a crash never
    leaves a half-written dataset there."""
    try:
        import datasets
    except ImportError:
        raise ExportError("the hf format needs the datasets package: pip install 'selfinstruct[hf]'") from None
    temp, old = path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")
    columns = {name: [r[name] for r in records] for name in HF_COLUMNS}
    features = datasets.Features({name: datasets.Value("string") for name in HF_COLUMNS})
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        for leftover in (temp, old):
            shutil.rmtree(leftover, ignore_errors=True)
        datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(temp))
        if card is not None:
            write_atomic(temp / CARD_NAME, card)
        if path.exists():  # a previous hf export (checked): set aside, swap in, then drop it
            os.rename(path, old)
            try:
                os.rename(temp, path)
            except OSError:
                os.rename(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temp, path)
    except (OSError, ValueError, TypeError) as exc:  # ValueError: pyarrow's ArrowInvalid
        raise JournalError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        if bars:
            datasets.enable_progress_bars()


@dataclass(frozen=True)
class Format:
    """One export format. To add one, add an entry to FORMATS."""
    default_name: str  # written next to the run when no output is given
    records: Callable[[list[Task]], list[dict]]  # the layout's writer (formats)
    write: Callable[[Path, list[dict], str | None], None]  # (path, records, card text or None)
    layout: str  # for the card: what is written
    joined: bool  # whether instruction and input are joined into one prompt
    directory: bool = False


FORMATS: dict[str, Format] = {
    "alpaca": Format("alpaca_data.json", alpaca_records, _file(_json_array),
                     "a JSON array of {instruction, input, output}, one per instance", False),
    "alpaca-jsonl": Format("alpaca_data.jsonl", alpaca_records, _file(_jsonl),
                           "JSONL of {instruction, input, output}, one per instance", False),
    "sharegpt": Format("sharegpt.jsonl", functools.partial(chat_records, layout="sharegpt"), _file(_jsonl),
                       'ShareGPT JSONL: {"conversations": [human, gpt]}, one per instance', True),
    "messages": Format("messages.jsonl", functools.partial(chat_records, layout="messages"), _file(_jsonl),
                       'OpenAI chat fine-tuning JSONL: {"messages": [user, assistant]}, one per instance', True),
    "hf": Format("hf", alpaca_records, _save_hf,
                 "a Hugging Face datasets Dataset (columns instruction, input, output), one row per "
                 "instance; load it with datasets.load_from_disk", False, directory=True),
    "seeds": Format("seed_tasks.jsonl", seed_records, _file(_jsonl),
                    "seed-task JSONL, one per task with its instances (usable as --seeds)", False),
}


def export_run(run_dir: Path | str, fmt: str = "alpaca", output: Path | str | None = None, *,
               card: bool = True, overwrite: bool = False) -> tuple[Path, int]:
    """Write the run's accepted tasks as ``fmt`` (see FORMATS) to ``output`` (default: next to the run)
    and, with ``card``, a dataset card (card_path). An existing ``output`` is replaced only at the
    default place or with ``overwrite``. Returns the path and the number of records."""
    run_dir = Path(run_dir)
    spec = FORMATS.get(fmt)
    if spec is None:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    tasks = accepted_tasks(run_dir)
    if not tasks:  # empty files (and an empty seeds file) would read as a finished, empty dataset
        raise ExportError(f"{run_dir} has no accepted task yet: nothing to export; resume the run first")
    default = run_dir / spec.default_name
    output = Path(output) if output else default
    replace = overwrite or os.path.abspath(output) == os.path.abspath(default)
    _check_target(run_dir, output, spec, card, replace)
    records = spec.records([read_seed(t) for t in tasks])  # a run's tasks are in the seed layout
    spec.write(output, records, _card_text(run_dir, fmt, tasks, len(records), output, card))
    return output, len(records)


def card_path(output: Path | str, fmt: str) -> Path:
    """Where an export to ``output`` writes its card."""
    output = Path(output)
    return output / CARD_NAME if FORMATS[fmt].directory else output.parent / CARD_NAME


def is_our_card(path: Path) -> bool:
    if special_kind(path):  # a FIFO would block the reading of it
        return False
    try:
        with path.open(encoding="utf-8") as text:
            return text.readline().strip() == CARD_MARKER
    except (OSError, UnicodeDecodeError):
        return False


def _check_target(run_dir: Path, output: Path, spec: Format, card: bool, replace: bool) -> None:
    """Raise ExportError, before anything is written, if the export would clobber what is not ours.
    ``replace``: an existing output may be replaced (the default place, or --overwrite)."""
    if is_run_file(run_dir, output) or is_file_of_a_run(output):
        raise ExportError(f"{output} is one of the run's own files; export somewhere else")
    if not output.parent.is_dir():
        raise ExportError(f"{output}: cannot write there: {output.parent} is not an existing directory")
    exists = ExportError(f"{output} exists; pass --overwrite to replace it, or choose another --output")
    if spec.directory:
        if output.exists() and not output.is_dir():
            raise ExportError(f"{output} exists and is not a directory; choose a new or empty directory")
        if output.is_dir() and any(output.iterdir()):
            if not is_hf_export(output):
                raise ExportError(f"{output} is not empty and is not a previous hf export; "
                                  "choose a new or empty directory")
            if not replace:
                raise exists
        return
    if output.is_dir():
        raise ExportError(f"{output} is a directory; give a file name to write to")
    if problem := unwritable_target(output):
        raise ExportError(problem)
    if card and output.name == CARD_NAME:
        raise ExportError(f"{output}: {CARD_NAME} is where the dataset card goes; "
                          "choose another name or pass --no-card")
    target = output.parent / CARD_NAME
    if card and (kind := special_kind(target)):
        raise ExportError(f"{target} is {kind}, not a dataset card; choose another directory")
    if card and (target.exists() and not is_our_card(target)):
        raise ExportError(f"{target} exists and is not a selfinstruct dataset card; "
                          "pass --no-card or choose another directory")
    others = sorted({str(e.get("run")) for e in card_exports(target).values() if not _same_run(e, run_dir)})
    if card and others:
        raise ExportError(f"{target} is the dataset card of another run ({', '.join(others)}); "
                          "choose another folder, or pass --no-card")
    if os.path.lexists(output) and not replace:
        raise exists


def is_hf_export(path: Path) -> bool:
    """A directory save_to_disk wrote with our columns, holding nothing else but our card."""
    names = {p.name for p in path.iterdir()}
    if not set(HF_FILES) <= names:
        return False
    for name in names - set(HF_FILES):
        entry = path / name
        ours = entry.is_file() and (name.startswith("data-") and name.endswith(".arrow")
                                    or name == CARD_NAME and is_our_card(entry))
        if not ours:
            return False
    try:
        features = json.loads((path / "dataset_info.json").read_text(encoding="utf-8"))["features"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return False
    return isinstance(features, dict) and tuple(features) == HF_COLUMNS


def _card_text(run_dir: Path, fmt: str, tasks: list[dict], records: int, output: Path, card: bool) -> str | None:
    """The card to write with this export, or None to leave the directory's card as it is.

    A file export's card lists the run's exports in that directory: the ones its card already lists
    whose files are still there, and this one. Without ``card``, a listed entry for this file name is
    removed all the same: the card must not describe a file this export replaces."""
    name = Path(os.path.abspath(run_dir)).name
    entry = {"format": fmt, "records": records, "exported": f"{datetime.now(timezone.utc):%Y-%m-%d}", "run": name,
             "run_id": run_identity(run_dir)}
    if FORMATS[fmt].directory:  # hf: its own card inside, one export
        return dataset_card(run_dir, tasks, {".": entry}) if card else None
    card_file = output.parent / CARD_NAME
    listed = card_exports(card_file)
    if card:
        # _check_target refused a card of another run; entries without a run name (older cards) are dropped.
        kept = {file: e for file, e in listed.items()
                if file != output.name and _same_run(e, run_dir) and (output.parent / file).is_file()}
        return dataset_card(run_dir, tasks, {**kept, output.name: entry})
    if output.name not in listed:
        return None
    # Edit the card's text rather than render it again: its entries may describe another run.
    lines = card_file.read_text(encoding="utf-8").splitlines(keepends=True)
    rest = {file: e for file, e in listed.items() if file != output.name}
    gone = f"- `{output.name}`: "
    return "".join([lines[0], _exports_line(rest), *[line for line in lines[2:] if not line.startswith(gone)]])


def _same_run(entry: dict, run_dir: Path) -> bool:
    """Whether a card's entry is an export of this run: by its identity (run_identity); an entry of an
    older card, without one, by the folder name."""
    if "run_id" in entry:
        return entry["run_id"] == run_identity(run_dir)
    return entry.get("run") == Path(os.path.abspath(run_dir)).name


def card_exports(path: Path) -> dict[str, dict]:
    """The exports our card at ``path`` lists, by file name ({} if it is not our card or lists none)."""
    if not is_our_card(path):
        return {}
    try:
        line = path.read_text(encoding="utf-8").splitlines()[1]
        listed = json.loads(line.removeprefix("<!-- ").removesuffix(" -->"))["exports"]
        return {file: e for file, e in listed.items() if isinstance(e, dict) and e.get("format") in FORMATS
                and isinstance(e.get("records"), int) and isinstance(e.get("exported"), str)}
    except (OSError, UnicodeDecodeError, IndexError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # a card of an older version: it lists nothing


def _exports_line(exports: dict[str, dict]) -> str:
    """The card's second line: its exports as JSON in an HTML comment (">" escaped, so it cannot close it)."""
    text = json.dumps({"exports": exports}, ensure_ascii=False).replace(">", "\\u003e")
    return f"<!-- {text} -->\n"


def _file_line(file: str, entry: dict) -> str:
    """One export in the card's Files section: what it is and how its prompt is made."""
    spec = FORMATS[entry["format"]]
    where = "this directory" if file == "." else f"`{file}`"
    per = "task" if entry["format"] == "seeds" else "instance"
    prompt = ('the instruction alone when the input is empty, otherwise `instruction + "\\n\\n" + input`'
              if spec.joined else "not joined: instruction and input are separate fields")
    return (f"- {where}: `{entry['format']}`, {entry['records']} records (one per {per}), exported "
            f"{entry['exported']}; {spec.layout}; prompt: {prompt}")


def dataset_card(run_dir: Path, tasks: list[dict], exports: dict[str, dict]) -> str:
    """A short Markdown card: what the data is, how it was made and filtered, and each export (file name
    -> format, records, date). Never a key: the stored base URL is redacted once more, and nothing else
    from the endpoint is written."""
    settings = read_settings(run_dir)
    lang = settings.get("lang", "unknown")
    unit = "characters" if lang == "zh" else "words"
    instances = sum(len(t["instances"]) for t in tasks)
    classification = ("not asked (alpaca mode)" if settings.get("mode") == "alpaca"
                      else sum(1 for t in tasks if t.get("is_classification")))
    model, api = settings.get("model", "unknown"), settings.get("api", "unknown")
    low, high, threshold = settings.get("min_length"), settings.get("max_length"), settings.get("threshold")
    if settings.get("local"):
        endpoint = "the embedded llama.cpp server (offline)"
    else:
        endpoint = redact_url(settings.get("base_url")) or "unknown"
    rejected = Counter(r.get("reason", "unknown") for r in rejected_candidates(run_dir))
    reasons = ", ".join(f"{reason} {count}" for reason, count in rejected.most_common()) or "none"
    name = Path(os.path.abspath(run_dir)).name
    main = ", ".join(f"{key} {settings.get(key)}" for key in
                     ("num_instructions", "threshold", "temperature", "concurrency", "mode", "seed"))
    files = "\n".join(_file_line(file, entry) for file, entry in exports.items())
    return f"""{CARD_MARKER}
{_exports_line(exports)}# {name}: instruction-tuning data made with selfinstruct

Exported from the selfinstruct run `{name}`; dates are UTC.

## Contents

- tasks: {len(tasks)}
- instances: {instances}
- classification tasks: {classification}
- language: {lang}

## Files

{files}

## Generation

- model: {model} ({api} API)
- endpoint: {endpoint}
- settings: {main}

## Filters

- near-duplicates: rejected when ROUGE-L against the pool is above {threshold}
- instruction length: {low} to {high} {unit}
- rejected candidates by reason (rejected.jsonl): {reasons}
"""


def rejected_candidates(run_dir: Path | str) -> list[dict]:
    """The run's rejected candidates, read without writing anything."""
    return _derived(Path(run_dir), "rejected.jsonl", _rejection_problem)


def accepted_tasks(run_dir: Path | str) -> list[dict]:
    """The run's accepted tasks, read without writing anything: the run may still be going."""
    run_dir = Path(run_dir)
    read_config(run_dir)
    return _derived(run_dir, "tasks.jsonl", _task_problem)


def _derived(run_dir: Path, name: str, check: Callable[[dict], str | None]) -> list[dict]:
    try:
        return Journal(run_dir / name).read(check=check)
    except JournalDamaged as exc:
        raise JournalDamaged(f"{exc}; {name} is derived from responses.jsonl: "
                             f"`selfinstruct resume {run_dir}` rebuilds it without sending a request") from None


def _task_problem(record: object) -> str | None:
    """What makes a line of tasks.jsonl unusable as an accepted task, or None."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    texts = [(key, record.get(key)) for key in ("id", "instruction")]
    instances = record.get("instances")
    if not isinstance(instances, list) or not instances:
        return "field 'instances': expected a list of instances"
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            return f"field 'instances[{i}]': expected an object"
        texts += [(f"instances[{i}].{key}", instance.get(key)) for key in ("input", "output")]
    if record.get("is_classification") not in (None, True, False):
        return "field 'is_classification': expected true, false or null"
    return _text_problem(texts)


def _rejection_problem(record: object) -> str | None:
    """What makes a line of rejected.jsonl unusable as a rejection, or None."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    texts = [(key, record.get(key)) for key in ("reason", "stage", "instruction")]
    return _text_problem(texts + ([("detail", record["detail"])] if "detail" in record else []))


def _text_problem(fields: list[tuple[str, object]]) -> str | None:
    for name, value in fields:
        if not isinstance(value, str):
            return f"field '{name}': expected a string, got {type(value).__name__}"
        if invalid_text(value):
            return f"field '{name}': {invalid_text(value)}"
    return None


def hf_records(path: Path):
    """(row number, record) of an hf export, for readers of what ``export`` writes (needs ``datasets``)."""
    try:
        import datasets  # the 'hf' extra, as when it was written
    except ImportError:
        raise ExportError(f"{path} is an hf export; reading it needs the datasets package: "
                          "pip install 'selfinstruct[hf]'") from None
    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged directory is bad input, whatever datasets raises
        raise ExportError(f"{path}: cannot read this hf export ({type(exc).__name__}: {exc})"[:400]) from None
    return ((number, dict(row)) for number, row in enumerate(dataset, 1))
