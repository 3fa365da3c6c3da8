"""How far the dry run's old prompt-token estimate is from the count by the model's encoding.

For each method and language, a 1,000-task dry run for gpt-4o-mini (nothing is sent): the prompt
tokens of the whole run as counted with o200k_base (the tokens extra) and as the estimate (a token
per CJK character, per 4 other characters) would have made them, and the difference. Then what the
extra costs a dry run: importing its library in a fresh interpreter, and loading one encoding.

    python bench/bench_tokens.py        # a few seconds
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from selfinstruct import Config  # noqa: E402
from selfinstruct.endpoint.tokens import estimate_tokens  # noqa: E402
from selfinstruct.generation.plan import plan  # noqa: E402

MODEL = "gpt-4o-mini"
LOAD = ("import time; t = time.perf_counter(); import bpe_openai; i = time.perf_counter() - t; "
        "t = time.perf_counter(); bpe_openai.get_encoding('o200k_base'); print(i, time.perf_counter() - t)")


def main() -> None:
    os.environ.pop("OPENAI_BASE_URL", None)
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    print(f"{'method':<14}{'lang':<6}{'counted':>10}{'estimated':>11}{'estimate off by':>17}  how")
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("self-instruct", "alpaca", "evol"):
            for lang in ("en", "zh"):
                estimate = plan(Config(model=MODEL, lang=lang, mode=mode, num_instructions=1000,
                                       output=Path(folder) / f"{mode}-{lang}"))
                prompts = dict(estimate.prompts)
                rough = sum(round(n * estimate_tokens(prompts[stage])) for stage, n in estimate.requests.items())
                how = {counter.says() for _, counter in estimate.prompt_tokens.values()}
                print(f"{mode:<14}{lang:<6}{estimate.tokens_in:>10,}{rough:>11,}"
                      f"{(rough - estimate.tokens_in) / estimate.tokens_in:>+16.1%}  {', '.join(sorted(how))}")
    imported, loaded = map(float, subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                                                 check=True).stdout.split())
    print(f"\nthe tokens extra in a dry run: import {imported:.2f} s, o200k_base loaded in {loaded:.2f} s")


if __name__ == "__main__":
    main()
