"""The progress line counts what the run has decided as it goes: rejections in every method (an Alpaca run
showed `rejected 0` for a whole run while its summary said 16)."""

from __future__ import annotations

import pytest
from openai_stub import ScriptedServer

from helpers import OddModel, run_config
from selfinstruct import generate
from selfinstruct.endpoint.progress import ProgressView


@pytest.mark.parametrize("mode", ["alpaca", "self-instruct", "evol"])
def test_rejections_show_in_the_progress_line_during_the_run(tmp_path, monkeypatch, mode):
    seen = []
    monkeypatch.setattr(ProgressView, "refresh", lambda view: seen.append(
        (view.stats.accepted, sum(view.stats.rejected.values()), view.stats.line())))
    with ScriptedServer(OddModel()) as server:  # answers with near-duplicates, too-short and image tasks
        summary = generate(run_config(server, tmp_path, lang="en", mode=mode, num_instructions=20))
    during = [(rejected, line) for accepted, rejected, line in seen if accepted < 20]
    assert summary["rejected"] > 0
    assert any(rejected > 0 and f"rejected {rejected}" in line for rejected, line in during), seen[-5:]
    assert seen[-1][1] == summary["rejected"]  # the last line agrees with the summary


def test_the_python_api_tells_the_endpoint_and_progress_when_asked(tmp_path):
    """A minute-long run through the Python API printed nothing: with notify and progress="lines" it says
    where it sends its requests, then how it goes (here a run shorter than a line's interval: the end)."""
    from selfinstruct import Config

    heard = []
    with ScriptedServer(OddModel()) as server:
        summary = generate(run_config(server, tmp_path, lang="en", num_instructions=6), progress="lines",
                           notify=heard.append)
        assert heard[0].startswith(f"endpoint: {server.base_url}, model stub-model (chat API)")
    assert heard[-1].split(" ", 1)[1].startswith("accepted 6/6 · ") and f"rejected {summary['rejected']}" in heard[-1]
    with pytest.raises(Exception, match="progress must be one of off, lines, bar, got 'yes'"):
        generate(Config(num_instructions=1), progress="yes")
