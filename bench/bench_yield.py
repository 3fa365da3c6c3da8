"""What the parsers make of real-style answers: yield, rejections, and records left corrupted.

The same target is generated against the fake endpoint answering in the prompt's own format
(``clean``), against it answering in the seeded mix of styles real chat models write (``mixed``:
intro sentences, bold and markdown headings, bullets, quotes, JSON in code fences), and, unless
``--no-real``, against the bundled model on the embedded llama.cpp server, with and without
``--structured`` where that option exists. For each it prints accepted tasks per request, the
rejections by reason, and the share of accepted records whose text still holds markup (``**``, a
``#`` heading, a line that is a heading word such as "Example 2") or unbalanced quotes.

Goal (issue 22): no corrupted record, and no accepted-task loss of ``mixed`` against ``clean``.

    python bench/bench_yield.py [--tasks 200] [--lang en zh] [--no-real]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_endpoint import FakeEndpoint  # noqa: E402

from selfinstruct import Config, RunStopped, generate  # noqa: E402

_MARKUP = re.compile(r"\*\*|^\s*#{1,6}\s|^\s*(?:\**)(?:example|task|instruction|示例|例子|任务|指令)\s*\d+\s*[:：]?\s*\**\s*$",
                     re.IGNORECASE | re.MULTILINE)
_PAIRS = (("“", "”"), ("「", "」"), ("《", "》"))


def corrupted(text: str) -> str | None:
    """Why a text looks damaged by parsing (markup left in it, unbalanced quotes), or None."""
    if _MARKUP.search(text):
        return "markup"
    if text.count('"') % 2 or any(text.count(a) != text.count(b) for a, b in _PAIRS):
        return "unbalanced quotes"
    return None


@dataclasses.dataclass
class Yield:
    name: str
    accepted: int
    requests: int
    seconds: float
    rejected: Counter
    corrupted: Counter
    examples: list[str]

    @property
    def per_request(self) -> float:
        return self.accepted / self.requests if self.requests else 0.0


def measure(name: str, config: Config) -> Yield:
    started = time.monotonic()
    try:
        generate(config)
    except RunStopped:
        pass
    seconds = time.monotonic() - started
    run = Path(config.output)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    damaged, examples = Counter(), []
    for line in (run / "tasks.jsonl").read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        texts = [task["instruction"], *(v for i in task["instances"] for v in (i["input"], i["output"]))]
        found = [(r, text) for text in texts if (r := corrupted(text))]
        damaged.update({r for r, _ in found})
        if found and len(examples) < 3:
            examples.append(f"{found[0][0]} in {json.dumps(found[0][1], ensure_ascii=False)[:160]}")
    return Yield(name, summary["accepted"], summary["requests"], seconds, Counter(summary["rejected_by_reason"]),
                 damaged, examples)


def doubles(tasks: int, lang: str, mode: str, tmp: Path) -> list[Yield]:
    found = []
    for styles in ("clean", "mixed"):
        with FakeEndpoint(0.0, styles) as base_url:
            config = Config(lang=lang, mode=mode, base_url=base_url, api_key="sk-bench", model="stub-model",
                            num_instructions=tasks, concurrency=16, output=tmp / f"{lang}-{mode}-{styles}",
                            timeout=60)
            found.append(measure(f"{lang} {mode} double, {styles}", config))
    return found


def real(tasks: int, lang: str, tmp: Path) -> list[Yield]:
    found = []
    variants = [("bundled model", {})]
    if "structured" in Config.__dataclass_fields__:
        variants.append(("bundled model --structured", {"structured": True}))
    for name, extra in variants:
        config = Config(lang=lang, local=True, num_instructions=tasks, output=tmp / f"{lang}-real-{len(found)}",
                        max_idle_rounds=5, **extra)
        found.append(measure(f"{lang} {name}", config))
    return found


def report(results: list[Yield]) -> None:
    print(f"\n{'run':<40} {'accepted':>8} {'requests':>8} {'per req':>8} {'corrupted':>9} {'seconds':>8}")
    for r in results:
        share = sum(r.corrupted.values()) / r.accepted if r.accepted else 0.0
        print(f"{r.name:<40} {r.accepted:>8} {r.requests:>8} {r.per_request:>8.3f} {share:>9.1%} {r.seconds:>8.1f}")
    for r in results:
        top = ", ".join(f"{reason} {n}" for reason, n in r.rejected.most_common(6)) or "none"
        print(f"  {r.name}: rejected {top}")
        if r.corrupted:
            print(f"    corrupted: {dict(r.corrupted)}; e.g. {'; '.join(r.examples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--real-tasks", type=int, default=10)
    parser.add_argument("--lang", nargs="+", default=["en", "zh"])
    parser.add_argument("--mode", nargs="+", default=["self-instruct", "alpaca", "evol"])
    parser.add_argument("--no-real", action="store_true", help="skip the bundled model (minutes on 2 cores)")
    parser.add_argument("--no-doubles", action="store_true", help="only the bundled model")
    arguments = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for lang in arguments.lang:
            for mode in () if arguments.no_doubles else arguments.mode:
                results += doubles(arguments.tasks, lang, mode, Path(scratch))
            if not arguments.no_real:
                results += real(arguments.real_tasks, lang, Path(scratch))
    report(results)


if __name__ == "__main__":
    main()
