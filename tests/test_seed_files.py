"""The bundled seed files: 175 valid, distinct tasks per language."""

from __future__ import annotations

import itertools

import pytest
from rouge_score import rouge_scorer

from selfinstruct.config import LENGTH_DEFAULTS
from selfinstruct.text.rules import clean_instances, instruction_rejection
from selfinstruct.resources import default_seeds
from selfinstruct.formats.seeds import load_seed_tasks
from selfinstruct.text.rouge import RougeIndex, Tokenizer


@pytest.fixture(params=["zh", "en"], scope="module")
def seeds(request):
    return request.param, load_seed_tasks(default_seeds(request.param))


def test_175_tasks_with_unique_ids_names_and_instructions(seeds):
    _, tasks = seeds
    assert len(tasks) == 175
    assert len({t.id for t in tasks}) == 175
    assert len({t.name for t in tasks}) == 175
    assert len({t.instruction for t in tasks}) == 175


def test_about_25_classification_tasks(seeds):
    _, tasks = seeds
    assert 20 <= sum(t.is_classification for t in tasks) <= 30


def test_every_task_has_a_realistic_instance_and_passes_the_filters(seeds):
    lang, tasks = seeds
    low, high = LENGTH_DEFAULTS[lang]
    for task in tasks:
        assert instruction_rejection(task.instruction, lang, low, high) is None, task.instruction
        kept, dropped = clean_instances(task.instances)
        assert kept and not dropped, task.id
        assert any(i.input.strip() for i in task.instances), task.id
        for instance in task.instances:
            assert not (instance.input.startswith(("<", "[")) and instance.input.endswith((">", "]"))), task.id


def test_no_two_instructions_above_0_7(seeds):
    _, tasks = seeds
    index = RougeIndex()
    for task in tasks:
        assert index.max_similarity(task.instruction) <= 0.7, task.instruction
        index.add(task.instruction)


def test_pairwise_check_agrees_with_rouge_score_on_a_sample(seeds):
    _, tasks = seeds
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokenizer())
    texts = [t.instruction for t in tasks[:40]]
    worst = max(scorer.score(a, b)["rougeL"].fmeasure for a, b in itertools.combinations(texts, 2))
    index = RougeIndex(texts[:-1])
    assert worst <= 0.7
    expected = max(scorer.score(t, texts[-1])["rougeL"].fmeasure for t in texts[:-1])
    assert index.max_similarity(texts[-1]) == expected
