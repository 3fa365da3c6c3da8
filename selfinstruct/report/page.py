"""`selfinstruct report`: one self-contained HTML page that shows what a dataset holds.

The figures follow the Self-Instruct paper: verb-noun diversity (Figure 2), ROUGE-L overlap with
the seed tasks (Figure 3) and lengths (Figure 4). For a run directory the page adds the funnel
from generated to accepted candidates, samples of each rejection, requests, tokens and cost.
Plots are PNGs inside the page, so it opens offline; every text from the data is escaped.
"""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from selfinstruct.config import read_settings, redact_url
from selfinstruct.report import plots
from selfinstruct.report.dataset import Dataset
from selfinstruct.report.figures import Figures, compute
from selfinstruct.report.diversity import top_pairs
from selfinstruct.text.lang import detect_lang
from selfinstruct.report.export import ExportError, accepted_tasks, hf_records, is_hf_export, rejected_candidates
from selfinstruct.store.journal import write_atomic
from selfinstruct.paths import special_kind, unwritable_target
from selfinstruct.formats.chat import CHAT_LAYOUTS
from selfinstruct.formats.layouts import read_task
from selfinstruct.formats.records import RecordError, iter_records, load_json
from selfinstruct.formats.seed_layout import read_seed
from selfinstruct.resources import default_seeds
from selfinstruct.store.rundir import RunDirError, completion_note
from selfinstruct.formats.seeds import load_seed_tasks
from selfinstruct.formats.task import Instance, Task
from selfinstruct.errors import BadInput

MARKER = "<!-- selfinstruct report -->"
LANG_NAMES = {"zh": "Chinese", "en": "English"}
MIXED_SHARE = 0.05  # a file whose second language has this share of the tasks is reported per language
SAMPLE_TASKS = 20
CELL_CHARS = 400  # longer texts are cut in the page's tables
REJECTIONS_SHOWN = 3
SETTINGS_SHOWN = ("lang", "mode", "model", "base_url", "api", "batch", "structured", "num_instructions", "threshold",
                  "temperature", "top_p", "max_tokens", "concurrency", "instances_per_task", "requests_per_round",
                  "seed", "judge", "judge_model", "min_score", "max_cost", "max_requests", "max_idle_rounds")


class ReportError(BadInput, ValueError):
    """Bad input for a report (exit 2)."""


def load(path: Path | str, lang: str = "auto") -> Dataset:
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    hf = path.is_dir() and is_hf_export(path)
    if path.is_dir() and not hf:
        return _load_run(path)
    tasks: dict[str, Task] = {}
    records = unreadable = 0
    first_bad, chat = "", False
    try:
        rows = hf_records(path) if hf else iter_records(path, skip_bad_lines=True)
    except ExportError as exc:
        raise ReportError(str(exc)) from None
    for line, record in rows:
        records += 1
        try:
            if isinstance(record, RecordError):
                raise ValueError(record.message)
            layout, read = read_task(record)  # a chat record's prompt, input and all, is its instruction
            if not read.instruction.strip():
                raise ValueError("field 'instruction': empty")
        except ValueError as exc:
            unreadable += 1
            first_bad = first_bad or f"{path}:{line}: {exc}"
            continue
        chat = chat or layout in CHAT_LAYOUTS
        task = tasks.setdefault(read.instruction, Task(read.instruction, [], None))
        task.instances += read.instances
        if read.is_classification is not None:
            task.is_classification = read.is_classification
    found = list(tasks.values())
    votes = Counter(detect_lang(t.instruction) for t in found[:2000])
    detected = votes.most_common(1)[0][0] if votes else "en"
    mixed = {}
    if lang == "auto" and len(votes) > 1 and min(votes.values()) >= MIXED_SHARE * sum(votes.values()):
        mixed = dict(Counter(detect_lang(t.instruction) for t in found).most_common())
    return Dataset(path, detected if lang == "auto" else lang, found, records, unreadable, first_bad=first_bad,
                   detected=detected, chat=chat, mixed=mixed)


def _load_run(path: Path) -> Dataset:
    try:
        settings = read_settings(path)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    accepted = accepted_tasks(path)
    tasks = [read_seed(t) for t in accepted]
    summary, problem = _summary(path / "summary.json")
    rejected = rejected_candidates(path)
    scores = [t["judge"]["score"] for t in accepted if _score(t.get("judge"))]
    return Dataset(path, settings["lang"], tasks, sum(len(t.instances) for t in tasks), rejected=rejected,
                   run={"settings": settings, "summary": summary, "summary_problem": problem, "scores": scores})


# What the page reads of summary.json: counts per stage or reason, and the cost.
_SUMMARY_COUNTS = ("candidates_by_stage", "requests_by_stage", "tokens_in_by_stage", "tokens_out_by_stage",
                   "retries_by_reason", "failed_requests_by_reason", "cost_usd_by_stage")


def _summary(path: Path) -> tuple[dict, str | None]:
    """summary.json, or {} and what is wrong with it: the page is drawn without its counts."""
    if not path.exists():
        return {}, None
    try:
        if kind := special_kind(path):
            raise ValueError(f"is {kind}")
        summary = load_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"unreadable ({exc})"
    if not isinstance(summary, dict):
        return {}, f"expected an object, got {type(summary).__name__}"
    for key in _SUMMARY_COUNTS:
        counts = summary.get(key) or {}
        if not isinstance(counts, dict) or not all(
                isinstance(n, (int, float)) and not isinstance(n, bool) for n in counts.values()):
            return {}, f"field '{key}': expected counts by name"
    cost = summary.get("cost_usd")
    if cost is not None and (not isinstance(cost, (int, float)) or isinstance(cost, bool)):
        return {}, "field 'cost_usd': expected a number"
    return summary, None


def write_report(path: Path | str, output: Path | str | None = None, *, seeds: Path | str | None = None,
                 lang: str = "auto", notify: Callable[[str], None] | None = None) -> Path:
    """Write the report of a run directory or a dataset file and return where it went; ``notify``
    hears what a reader should know (skipped records, a run still going, a doubtful --lang)."""
    try:
        plots.pyplot()
    except ImportError as exc:
        raise ReportError(f"report needs the 'report' extra ({exc.name} is missing): "
                          "pip install 'selfinstruct[report]'") from None
    started = time.monotonic()
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    path = path if path.name else path.resolve()  # `report .`: the folder's own name for a page beside it
    inside = path.is_dir() and not is_hf_export(path)  # a run's page goes in it; an hf export stays as written
    output = Path(output) if output else (path / "report.html" if inside
                                          else path.with_name(path.name + ".report.html"))
    _check_output(output)
    data = load(path, lang)
    notes = _notes(data, lang)
    for note in notes if notify else ():
        notify(note)
    if not data.tasks and not data.run:
        raise ReportError(f"{data.source}: no records with a string 'instruction' field ({data.records} read)")
    stored = data.run["settings"].get("seeds") if data.run else None  # none in an evol run started --from a dataset
    if seeds is None and stored and Path(stored).is_file():
        seeds = stored
    seeds = Path(seeds) if seeds else default_seeds(data.lang)
    seed_instructions = [t.instruction for t in load_seed_tasks(seeds)]
    if data.mixed and seeds == default_seeds(data.lang):  # each language's instructions against its own seeds
        seed_instructions += [t.instruction for lang in data.mixed if lang != data.lang
                              for t in load_seed_tasks(default_seeds(lang))]
    threshold = data.run["settings"].get("threshold", 0.7) if data.run else 0.7
    fig = compute(data, seed_instructions, threshold)
    write_atomic(output, _page(data, fig, plots, seeds, notes, time.monotonic() - started))
    return output


def _check_output(output: Path) -> None:
    """Refuse, before any work, an output that cannot be written or is not ours to replace."""
    if output.is_dir():
        raise ReportError(f"{output} is a directory; give a file name to write to")
    if problem := unwritable_target(output):
        raise ReportError(problem)
    parent = output.parent
    if not parent.is_dir():
        raise ReportError(f"{output}: cannot write there: {parent} is not an existing directory")
    if not os.access(parent, os.W_OK):
        raise ReportError(f"{output}: cannot write there: {parent} is not writable")
    if output.exists():
        with output.open(encoding="utf-8", errors="replace") as existing:
            if existing.readline().rstrip("\n") != MARKER:
                raise ReportError(f"{output} exists and is not a selfinstruct report; choose another --output")


def _notes(data: Dataset, lang: str) -> list[str]:
    notes = []
    if data.unreadable:
        notes.append(f"{data.unreadable} of {data.records} records skipped, the first: {data.first_bad}")
    if data.run:
        note = completion_note(data.source)
        notes += [note] if note else []
        if data.run["summary_problem"]:
            notes.append(f"{data.source / 'summary.json'} is damaged ({data.run['summary_problem']}), so requests, "
                         f"tokens and cost are left out; `selfinstruct resume {data.source}` writes it again")
    elif lang != "auto" and data.detected != lang:
        notes.append(f"--lang {lang}, but most instructions look {data.detected}")
    return notes


# -- the page -----------------------------------------------------------------------------------

def _page(data: Dataset, fig: Figures, plots, seeds: Path, notes: list[str], seconds: float) -> str:
    parts = [f"<h1>{_e(data.source.name)}</h1>",
             f"<p class=meta>{len(data.tasks)} tasks, {_languages(data)}; made by selfinstruct {importlib.metadata.version('selfinstruct')} "
             f"on {datetime.date.today().isoformat()}.</p>"]
    parts += [f"<p class=warn>{_e(note)}</p>" for note in notes]
    if (data.lang == "zh" or "zh" in data.mixed) and not plots.cjk_font():
        parts.append("<p class=warn>No font with Chinese characters was found, so the figures' Chinese labels "
                     "show as boxes; install one (for example fonts-noto-cjk or fonts-wqy-microhei).</p>")
    if data.tasks:
        parts += _dataset_sections(data, fig, plots, seeds)
    else:
        parts.append("<p>No accepted tasks yet: the figures and numbers need some.</p>")
    if data.run:
        parts += _run_sections(data, plots)
    if data.tasks:
        sample = sorted(random.Random(0).sample(range(len(data.tasks)), min(SAMPLE_TASKS, len(data.tasks))))
        firsts = [data.tasks[i].instances[0] if data.tasks[i].instances else Instance("", "") for i in sample]
        rows = ((_cut(data.tasks[i].instruction), _cut(first.input), _cut(first.output))
                for i, first in zip(sample, firsts))
        parts.append(_section(f"A random sample of {len(sample)} tasks",
                              _table(rows, ("instruction", "input", "output"))))
    parts.append(f"<p class=meta>Written in {seconds:.1f} s.</p>")
    return (f"{MARKER}\n<!doctype html>\n<html lang={'zh' if data.lang == 'zh' else 'en'}><head><meta charset=utf-8>"
            f"<title>Report: {_e(data.source.name)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _dataset_sections(data: Dataset, fig: Figures, plots, seeds: Path) -> list[str]:
    seed_name = "the bundled seed tasks" if seeds == default_seeds(data.lang) else seeds.name
    sample_note = f" (a random sample of {len(fig.rest_overlap)})" if len(fig.rest_overlap) < len(data.tasks) else ""
    overlap = _section("Overlap: highest ROUGE-L of each instruction (Figure 3)", _img(plots.histograms([
        (f"against {seed_name}", fig.seed_overlap, "ROUGE-L"),
        (f"against the rest of the dataset{sample_note}", fig.rest_overlap, "ROUGE-L")],
        bins=[i / 20 for i in range(21)]), "ROUGE-L histograms"))
    if not data.mixed:
        diversity, lengths = _per_language(fig.pairs, fig.lengths, data.lang, plots, "")
        return [_section("Numbers", _table(fig.numbers.items())), diversity, overlap, lengths]
    shares = " and ".join(f"{LANG_NAMES[lang]} ({n} tasks)" for lang, n in data.mixed.items())
    said = (f"<p>This dataset mixes {shares}: verbs and lengths are shown for each language, Chinese in "
            "characters and English in words.</p>")
    sections = [_section("Numbers", said + _table(fig.numbers.items()))]
    for lang, (pairs, lengths) in fig.by_lang.items():
        sections += _per_language(pairs, lengths, lang, plots, f", {LANG_NAMES[lang]}")
    return sections + [overlap]


def _per_language(pairs: list, lengths: dict[str, list[int]], lang: str, plots, which: str) -> list[str]:
    """The diversity and length sections of one language's tasks."""
    unit = "characters" if lang == "zh" else "words"
    top = top_pairs(pairs)
    verbs_table = _table(((verb, n, ", ".join(f"{noun} {k}" for noun, k in nouns)) for verb, n, nouns in top),
                         ("verb", "tasks", "commonest objects"), empty="No instruction starts with a verb we know.")
    return [
        _section(f"Diversity{which}: root verbs and their objects (Figure 2 of the Self-Instruct paper)",
                 (_img(plots.sunburst(top), "verbs and their objects") if top else "") + verbs_table),
        _section(f"Lengths{which} in {unit} (Figure 4)", _img(plots.histograms([
            ("instructions", lengths["instruction"], unit), ("inputs (non-empty)", lengths["input"], unit),
            ("outputs", lengths["output"], unit)]), "length histograms")),
    ]


def _run_sections(data: Dataset, plots) -> list[str]:
    summary, settings = data.run["summary"], data.run["settings"]
    by_reason = Counter(r["reason"] for r in data.rejected)
    generated = summary.get("candidates_by_stage", {}).get("generated") or len(data.tasks) + len(data.rejected)
    unused = generated - len(data.tasks) - len(data.rejected)  # completed or cut once the target was in reach
    steps = [("generated", generated), *by_reason.most_common(),
             *([("not needed: target reached", unused)] if unused > 0 else []), ("accepted", len(data.tasks))]
    funnel = _img(plots.funnel(steps), "funnel from generated to accepted") if generated else "<p>Nothing generated yet.</p>"
    stages = Counter((r["stage"], r["reason"]) for r in data.rejected)
    funnel += _table(((stage, reason, n) for (stage, reason), n in stages.most_common()), ("stage", "rule", "rejected"),
                     empty="No candidate was rejected.")
    samples = []
    for reason, _ in by_reason.most_common():
        shown = [r for r in data.rejected if r["reason"] == reason][:REJECTIONS_SHOWN]
        samples += [(reason, _cut(r["instruction"]), _cut(_detail(r))) for r in shown]
    costs = summary.get("cost_usd_by_stage") or {}
    stages_table = _table(((stage, n, summary.get("tokens_in_by_stage", {}).get(stage, 0),
                            summary.get("tokens_out_by_stage", {}).get(stage, 0),
                            f"${costs[stage]:.4f}" if stage in costs else "unknown")
                           for stage, n in summary.get("requests_by_stage", {}).items()),
                          ("stage", "requests", "tokens in", "tokens out", "cost"),
                          empty="No summary.json yet: a run writes its counts when a session ends.")
    cost = summary.get("cost_usd")
    health = {"wall time (s)": summary.get("wall_seconds", "unknown"),
              "cost": "unknown" if cost is None else f"${cost:.4f}",
              "retries": ", ".join(f"{k} {v}" for k, v in summary.get("retries_by_reason", {}).items()) or "none",
              "failed requests": ", ".join(f"{k} {v}" for k, v in
                                           summary.get("failed_requests_by_reason", {}).items()) or "none",
              "stopped because": summary.get("stop_reason") or ("complete" if summary.get("complete") else "unknown")}
    shown = {key: redact_url(settings[key]) if key == "base_url" else settings[key]
             for key in SETTINGS_SHOWN if key in settings}
    if settings.get("local") or "base_url" in shown and shown["base_url"] is None:
        shown["base_url"] = "the embedded llama.cpp server"
    judged = {"accepted": data.run.get("scores", []),
              "rejected: low_score": [int(r["detail"].split(":", 1)[0]) for r in data.rejected
                                      if r["reason"] == "low_score" and re.match(r"[1-5]:", r.get("detail") or "")]}
    scores = [_section("The judge's scores", _img(plots.scores(judged), "judge score histogram"))] if any(
        judged.values()) else []
    return [_section("The funnel: from generated to accepted", funnel),
            *scores,
            _section("Rejected candidates, a few of each rule", _table(samples, ("rule", "instruction", "detail"),
                                                                       empty="None.")),
            _section("Requests, tokens and cost", stages_table + _table(health.items())),
            _section("Settings", _table(shown.items()))]


def _languages(data: Dataset) -> str:
    return f"languages {' and '.join(data.mixed)}" if data.mixed else f"language {data.lang}"


def _detail(rejection: dict) -> str:
    """A rejection's detail; for too_similar, the closest instruction and its ROUGE-L score."""
    closest = (rejection.get("most_similar") or [None])[0]
    if not rejection.get("detail") and isinstance(closest, dict) and "instruction" in closest:
        return f"{closest.get('score')}: {closest['instruction']}"
    return rejection.get("detail") or ""


def _score(judged) -> bool:
    return isinstance(judged, dict) and type(judged.get("score")) is int and 1 <= judged["score"] <= 5


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top;max-width:420px;white-space:pre-wrap;word-break:break-word}
th{background:#f4f4f4}img{max-width:100%}.meta{color:#666}.warn{color:#a40}"""


def _e(value) -> str:
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{body}\n</section>"


def _table(rows, header: tuple[str, ...] | None = None, empty: str = "None.") -> str:
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f"<p>{_e(empty)}</p>"
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    return f"<table>{head}{body}</table>"


def _cut(text: str, limit: int = CELL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"
