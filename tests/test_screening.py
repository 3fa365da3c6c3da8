"""Reading a filter's input in parts, in worker processes: the same files as one reader, byte for byte,
and Ctrl+C or SIGTERM ends the workers too."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfinstruct import filter_dataset
from selfinstruct.dedup import read as screening
from selfinstruct.formats.records import RecordError, iter_records, line_parts

SCRIPT = Path(sys.executable).with_name("selfinstruct")
EN = "write explain list describe three short the a poem story about cat dog sea sky red blue".split()
ZH = "写 一 首 关 于 春 天 的 诗 解 释 山 水 风 人".split()


def _lines(rng: random.Random, count: int) -> list[bytes]:
    """JSON lines of mixed zh/en records, a third near-duplicates, with the odd lines users' files hold."""
    made: list[dict] = []
    for _ in range(count):
        words, sep = (EN, " ") if rng.random() < 0.5 else (ZH, "")
        if made and rng.random() < 0.35:
            record = dict(rng.choice(made), output=rng.choice(words))
        else:
            record = {"instruction": sep.join(rng.choice(words) for _ in range(rng.randint(3, 12))),
                      "input": rng.choice(["", rng.choice(words)]), "output": sep.join(rng.sample(words, 3))}
        made.append(record)
    lines = [json.dumps(r, ensure_ascii=rng.random() < 0.3).encode("utf-8") for r in made]
    odd = [b"", b"   ", b"{not json", '{"instruction": "坏"}'.encode("gbk"), b"5", b'{"output": "no instruction"}',
           json.dumps({"instruction": "Say hello\ud800 twice.", "output": "x"}).encode()]
    for item in odd:
        lines.insert(rng.randrange(len(lines)), item)
    return lines


def test_line_parts_cover_the_file_and_start_at_lines(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_bytes(b"\n".join(_lines(random.Random(1), 300)))  # no newline at the end
    data = source.read_bytes()
    parts = line_parts(source, 1000)
    assert len(parts) > 10
    assert parts[0][0] == 0 and parts[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert all(data[start - 1:start] == b"\n" for start, _ in parts[1:])
    def plain(record):  # a bad line's error, without the line number, which counts from the part's start
        return record.message if isinstance(record, RecordError) else record

    whole = [plain(record) for _, record in iter_records(source, skip_bad_lines=True)]
    apart = [plain(record) for part in parts for _, record in iter_records(source, skip_bad_lines=True, part=part)]
    assert apart == whole and sum(isinstance(r, str) for r in whole) == 2  # not JSON; not UTF-8
    array = tmp_path / "data.json"
    array.write_text(json.dumps([{"instruction": "Name a colour.", "output": "Blue."}] * 50))
    assert line_parts(array, 100) == []


@pytest.mark.slow
@pytest.mark.parametrize("key", ["instruction", "instruction+input"])
def test_reading_in_parts_writes_the_same_files_as_one_reader(tmp_path, monkeypatch, key):
    source = tmp_path / "data.jsonl"
    source.write_bytes(b"\r\n".join(_lines(random.Random(7), 1500)) + b"\r\n")
    one = filter_dataset(source, tmp_path / "one.jsonl", workers=1, key=key)
    monkeypatch.setattr(screening, "PART_BYTES", 4000)
    assert len(line_parts(source, screening.PART_BYTES)) > 20
    for workers in (2, 3):
        seen = []
        out = tmp_path / f"parts{workers}.jsonl"
        apart = filter_dataset(source, out, workers=workers, key=key,
                               progress=lambda stage, done, total: seen.append((stage, done, total)))
        assert (apart.total, apart.kept, apart.dropped) == (one.total, one.kept, one.dropped)
        assert out.read_bytes() == (tmp_path / "one.jsonl").read_bytes()
        assert out.with_name(out.stem + ".dropped.jsonl").read_bytes() == (tmp_path / "one.dropped.jsonl").read_bytes()
        read = [done for stage, done, _ in seen if stage == "read"]
        assert read == sorted(read) and len(set(read)) > 20  # a step per part, never backwards
    assert one.dropped["duplicate"] > 200 and one.dropped["bad_record"] == 5 and one.kept > 200


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_reading_in_parts_ends_the_readers_and_writes_nothing(tmp_path, signum, code):
    rng = random.Random(3)
    source = tmp_path / "big.jsonl"
    with source.open("wb") as out:
        while out.tell() < 3 * screening.PART_BYTES:
            out.write(b"\n".join(_lines(rng, 5000)) + b"\n")
    process = subprocess.Popen([str(SCRIPT), "filter", str(source), "-o", str(tmp_path / "clean.jsonl"),
                                "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers: list[str] = []
    deadline = time.monotonic() + 60
    while len(readers) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        readers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(readers) == 2, "the reading processes did not start"
    time.sleep(0.5)
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    name = signal.Signals(signum).name
    assert err.splitlines()[-1] == f"error: interrupted ({name}); no file is left half-written"
    assert "Traceback" not in err
    for pid in readers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]
