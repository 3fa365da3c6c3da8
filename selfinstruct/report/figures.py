"""Every number of a report, computed once from a dataset: verbs and their objects, overlap with the
seeds and within the dataset, lengths, and the counts of the Numbers table (per language too, for a
file that mixes Chinese and English)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from selfinstruct.formats.task import Task
from selfinstruct.report.dataset import Dataset
from selfinstruct.report.diversity import compression_ratio, distinct_n, units, verb_noun_pairs
from selfinstruct.text.rouge import RougeIndex

OVERLAP_SAMPLE = 2000  # instructions whose highest ROUGE-L against all the others is plotted


@dataclass
class Figures:
    """Every number and plot of a report, computed once."""

    pairs: list = field(default_factory=list)
    seed_overlap: list[float] = field(default_factory=list)
    rest_overlap: list[float] = field(default_factory=list)
    near_duplicate_groups: int = 0
    near_duplicates: int = 0
    lengths: dict[str, list[int]] = field(default_factory=dict)
    numbers: dict[str, float | int | str] = field(default_factory=dict)
    by_lang: dict[str, tuple[list, dict[str, list[int]]]] = field(default_factory=dict)  # mixed: pairs, lengths


def compute(data: Dataset, seed_instructions: list[str], threshold: float = 0.7) -> Figures:
    instructions = [t.instruction for t in data.tasks]
    fig = Figures()
    fig.pairs = verb_noun_pairs(instructions, data.lang)
    for lang in data.mixed:  # each language's verbs and lengths, read the way that language is read
        tasks = [t for t in data.tasks if data.lang_of(t) == lang]
        fig.by_lang[lang] = (verb_noun_pairs([t.instruction for t in tasks], lang), _lengths(tasks, lang))
    seed_index = RougeIndex(seed_instructions)
    fig.seed_overlap = seed_index.max_scores(instructions)
    index = RougeIndex()
    parent = list(range(len(instructions)))  # near-duplicate groups: union-find over "above threshold" links

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, text in enumerate(instructions):
        match = index.first_above(text, threshold)
        if match:
            parent[root(i)] = root(match.index)
            fig.near_duplicates += 1
        index.add(text)
    groups = Counter(root(i) for i in range(len(instructions)))
    fig.near_duplicate_groups = sum(1 for n in groups.values() if n > 1)
    sample = sorted(random.Random(0).sample(range(len(instructions)), min(OVERLAP_SAMPLE, len(instructions))))
    for i in sample:
        others = [m.score for m in index.most_similar(instructions[i], 2) if m.index != i]
        fig.rest_overlap.append(others[0] if others else 0.0)
    instances = [instance for t in data.tasks for instance in t.instances]
    fig.lengths = _lengths(data.tasks, data.lang)
    known = [t.is_classification for t in data.tasks if t.is_classification is not None]
    fig.numbers = {
        "tasks": len(data.tasks),
        **({} if data.run else {"records": data.records}),  # a run's records are its instances
        "instances": len(instances),
        "tasks with an input": "unknown: chat turns hold the input in the prompt" if data.chat else
        _share(sum(any(i.input.strip() for i in t.instances) for t in data.tasks), len(data.tasks)),
        "classification tasks": _share(sum(known), len(known)) if known else "unknown",
        **_distinct(data, instructions),
        "compression ratio": round(compression_ratio(instructions), 3),
        f"near-duplicate groups (ROUGE-L > {threshold:g})": fig.near_duplicate_groups,
        "instructions in them but the first": fig.near_duplicates,
        "mean ROUGE-L to the closest seed": round(sum(fig.seed_overlap) / len(instructions), 4) if instructions else 0,
        "instructions with a parsed verb": _share(sum(1 for pairs in _pairs_by_lang(fig) for v, _ in pairs if v),
                                                  len(instructions)),
    }
    if data.unreadable:
        fig.numbers["unreadable records (skipped)"] = data.unreadable
    return fig


def _distinct(data: Dataset, instructions: list[str]) -> dict[str, float]:
    """distinct-1 and -2 of the instructions; of each language's apart, in its own tokens, in a mixed file."""
    if not data.mixed:
        return {f"distinct-{n}": round(distinct_n(instructions, n, data.lang), 4) for n in (1, 2)}
    return {f"distinct-{n}, {lang}": round(distinct_n([t.instruction for t in data.tasks if data.lang_of(t) == lang],
                                                       n, lang), 4)
            for lang in data.mixed for n in (1, 2)}


def _pairs_by_lang(fig: Figures) -> list[list]:
    """The verb-object pairs of every language read (one list for a file in one language)."""
    return [pairs for pairs, _ in fig.by_lang.values()] if fig.by_lang else [fig.pairs]


def _lengths(tasks: list[Task], lang: str) -> dict[str, list[int]]:
    """Lengths of instructions, non-empty inputs and outputs, in the units of ``lang``."""
    instances = [instance for t in tasks for instance in t.instances]
    return {"instruction": [len(units(t.instruction, lang)) for t in tasks],
            "input": [len(units(i.input, lang)) for i in instances if i.input.strip()],
            "output": [len(units(i.output, lang)) for i in instances]}


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.1%})" if whole else "0"
