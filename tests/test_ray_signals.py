"""Ctrl+C and SIGTERM around `filter --engine ray`: Ray is never left half made.

Ctrl+C while Ray started crashed the exit with SIGSEGV and left Ray's processes behind; and
``ray.init`` makes SIGTERM a plain ``sys.exit(15)``, past the command's own handler (exit 143). Each
test starts Ray itself, on a real local cluster, as `filter --engine ray` does.
"""

from __future__ import annotations

import json
import random
import signal

import pytest

ray = pytest.importorskip("ray")  # the test extra installs it: a skip here is a broken install

from selfinstruct import filter_dataset  # noqa: E402

pytestmark = pytest.mark.slow  # every test here starts a Ray cluster and sends signals


class Stopped(Exception):
    """What the caller's SIGTERM handler raises (the CLI's raises Interrupted)."""


@pytest.fixture
def dataset(tmp_path):
    rng = random.Random(9)
    words = "the a cat dog red blue sky sea write explain list three poem story river stone glass".split()
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"instruction": " ".join(rng.choices(words, k=8)), "output": "x"}) + "\n"
                              for _ in range(3000)), encoding="utf-8")
    assert not ray.is_initialized()
    yield source
    if ray.is_initialized():  # a failed test must not leave its cluster to the next one
        ray.shutdown()


def test_ctrl_c_while_ray_starts_is_held_until_ray_is_shut_down(dataset, tmp_path, monkeypatch):
    real_init = ray.init

    def init(*args, **kwargs):
        real_init(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # Ctrl+C while Ray comes up
        sum(range(1000))  # Python runs a signal's handler between bytecodes: here, unless it is held

    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(KeyboardInterrupt):
        filter_dataset(dataset, tmp_path / "out.jsonl", engine="ray", workers=2)
    assert not ray.is_initialized()
    assert sorted(p.name for p in tmp_path.iterdir()) == [dataset.name]


def test_sigterm_during_ray_deduplication_reaches_the_callers_handler(dataset, tmp_path):
    def stop(signum, frame):
        raise Stopped(signum)

    def progress(stage, done, total):
        if stage == "dedup" and done > 0:
            signal.raise_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Stopped):
            filter_dataset(dataset, tmp_path / "out.jsonl", engine="ray", workers=2, progress=progress)
        assert signal.getsignal(signal.SIGTERM) is stop  # Ray's own handler (a plain exit) is gone again
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not ray.is_initialized()
    assert sorted(p.name for p in tmp_path.iterdir()) == [dataset.name]
