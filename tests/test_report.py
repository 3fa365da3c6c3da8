"""`selfinstruct report`: its numbers on a small fixed dataset, a run's funnel, and the page in a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers import EXPORT_KEY as KEY, PASSWORD

from selfinstruct.report.diversity import verb_noun_en
from selfinstruct.report.page import MARKER, compute, load, write_report
from selfinstruct.text.rouge import rouge_l, tokenize

SCRIPT = Path(sys.executable).parent / "selfinstruct"
CHROMIUM = Path("/usr/bin/chromium")
RECORDS = [
    {"instruction": "Write a short poem about the sea.", "input": "", "output": "Waves roll in."},
    {"instruction": "Write a short poem about the sea.", "input": "", "output": "Blue and deep."},
    {"instruction": "Translate the sentence into French.", "input": "I like tea.", "output": "J'aime le thé."},
    {"instruction": "Summarize the article in one line.", "input": "The article text here.", "output": "Short."},
    {"instruction": "Write a short poem about the seas.", "input": "", "output": "Salt."},
    {"instruction": "Explain <img src=x onerror=alert(1)> in plain words.", "input": "", "output": "<b>bold</b>"},
]
SEED = "Write a short poem about the sea."


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def seeds(tmp_path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"instruction": SEED, "instances": [{"input": "", "output": "x"}]}) + "\n",
                    encoding="utf-8")
    return path


def numbers_of(page: str) -> dict[str, str]:
    table = page.split("<h2>Numbers</h2>", 1)[1].split("</table>", 1)[0]
    return {html.unescape(k): html.unescape(v) for k, v in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table)}


@pytest.mark.slow
def test_numbers_of_a_small_fixed_dataset(dataset, seeds):
    data = load(dataset)
    assert data.lang == "en" and data.records == 6 and len(data.tasks) == 5  # one instruction has two instances
    fig = compute(data, [SEED])
    instructions = [t.instruction for t in data.tasks]
    assert fig.pairs[:4] == [("write", "poem"), ("translate", "sentence"), ("summarize", "article"), ("write", "poem")]
    assert fig.seed_overlap[0] == 1.0
    assert fig.seed_overlap == [rouge_l(tokenize(t), tokenize(SEED)) for t in instructions]
    # "... the sea." and "... the seas." share 6 of 7 words: ROUGE-L 0.857, one group of near-duplicates.
    assert (fig.near_duplicate_groups, fig.near_duplicates) == (1, 1)
    assert sorted(fig.rest_overlap) == sorted(max(rouge_l(tokenize(t), tokenize(o)) for o in instructions if o != t)
                                              for t in instructions)
    assert fig.lengths == {"instruction": [7, 5, 6, 7, 10], "input": [3, 4], "output": [3, 3, 4, 1, 1, 3]}
    tokens = [tokenize(t) for t in instructions]
    unigrams = [w for ts in tokens for w in ts]
    bigrams = [tuple(ts[i:i + 2]) for ts in tokens for i in range(len(ts) - 1)]
    assert fig.numbers["distinct-1"] == round(len(set(unigrams)) / len(unigrams), 4)
    assert fig.numbers["distinct-2"] == round(len(set(bigrams)) / len(bigrams), 4)
    assert fig.numbers["tasks with an input"] == "2 (40.0%)"
    assert fig.numbers["classification tasks"] == "unknown"

    page = write_report(dataset, seeds=seeds).read_text(encoding="utf-8")
    shown = numbers_of(page)
    assert shown["tasks"] == "5" and shown["records"] == "6" and shown["instances"] == "6"
    assert shown["distinct-1"] == str(fig.numbers["distinct-1"])
    assert shown["near-duplicate groups (ROUGE-L > 0.7)"] == "1"
    assert "against seeds.jsonl" not in page  # plot titles are inside the images; the table names the verbs
    assert "<td>write</td><td>2</td><td>poem 2</td>" in page


@pytest.mark.slow
def test_the_page_escapes_every_text_from_the_data(dataset, seeds):
    page = write_report(dataset, seeds=seeds).read_text(encoding="utf-8")
    assert page.startswith(MARKER)
    assert "<img src=x" not in page and "<b>bold</b>" not in page
    assert not re.search(r"<script", page, re.I)
    assert not re.search(r"(src|href)=\"?(http|//)", page)  # nothing to fetch: the page opens offline


def test_english_verbs_and_objects():
    cases = {"Given a list of numbers, find the largest one.": ("find", "largest"),
             "Can you create a marketing plan for a bakery?": ("create", "plan"),
             "Explain why the sky is blue.": ("explain", None),
             "What is the capital of France?": (None, None)}
    assert {text: verb_noun_en(text) for text in cases} == cases


@pytest.mark.slow
def test_chinese_verbs_and_objects():
    from selfinstruct.report.diversity import verb_noun_zh

    cases = {"写一首关于春天的诗": ("写", "诗"), "请帮我写一封求职信，要求简洁": ("写", "求职信"),
             "根据以下描述，生成一个产品名称": ("生成", "产品名称"), "总结这篇文章的主要观点": ("总结", "观点")}
    assert {text: verb_noun_zh(text) for text in cases} == cases


@pytest.mark.slow
def test_a_run_report_shows_the_funnel_and_no_credential(run):
    page = write_report(run).read_text(encoding="utf-8")
    rejected = [json.loads(line) for line in (run / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    tasks = (run / "tasks.jsonl").read_text(encoding="utf-8").splitlines()
    for (stage, reason), n in Counter((r["stage"], r["reason"]) for r in rejected).items():
        assert f"<tr><td>{stage}</td><td>{reason}</td><td>{n}</td></tr>" in page
    assert numbers_of(page)["tasks"] == str(len(tasks))
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    for stage, n in summary["requests_by_stage"].items():
        assert f"<tr><td>{stage}</td><td>{n}</td>" in page
    assert KEY not in page and PASSWORD not in page and "REDACTED" in page
    assert page.count("data:image/png;base64,") == 4  # verbs, overlap, lengths, funnel


@pytest.mark.slow
def test_cli_prints_the_path_and_fails_in_one_line(run, tmp_path):
    done = subprocess.run([str(SCRIPT), "report", str(run), "-o", str(tmp_path / "r.html")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "r.html" and (tmp_path / "r.html").is_file()
    (tmp_path / "notes.html").write_text("mine", encoding="utf-8")
    for args, error in ((["missing.json"], "missing.json: no such file or directory"),
                        ([str(run), "-o", "notes.html"], "notes.html exists and is not a selfinstruct report"),
                        ([str(run), "--seeds", "nope.jsonl"], "nope.jsonl: cannot read")):
        done = subprocess.run([str(SCRIPT), "report", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and error in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert (tmp_path / "notes.html").read_text(encoding="utf-8") == "mine"


def test_without_the_report_extra_it_says_what_to_install(run):
    code = ("import sys; sys.modules['matplotlib'] = None; from selfinstruct.cli import app; "
            f"app(['report', {str(run)!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: report needs the 'report' extra (matplotlib is missing): "
                                   "pip install 'selfinstruct[report]'")


# -- a real browser ---------------------------------------------------------------------------------

PAGE_CHECK = """() => Array.from(document.images).map(img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const colors = new Set(); let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
        colors.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        if (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200) inked++;
    }
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth, colors: colors.size,
            inked: inked / (data.length / 4)};
})"""


def render(page: Path) -> tuple[list[str], list[dict], str]:
    """Console errors, each image's decoding and ink, and the visible text, from headless Chromium."""
    assert CHROMIUM.exists(), "the browser test needs Debian's chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            tab = browser.new_page()
            errors: list[str] = []
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            tab.goto(page.as_uri(), wait_until="load")
            images = tab.evaluate(PAGE_CHECK)
            text = tab.inner_text("body")
        finally:
            browser.close()
    return errors, images, text


@pytest.mark.slow
@pytest.mark.parametrize("which", ["run", "file"])
def test_the_report_renders_in_a_real_browser(which, run, dataset, seeds):
    page = write_report(run) if which == "run" else write_report(dataset, seeds=seeds)
    errors, images, text = render(page)
    assert errors == []
    assert len(images) == (4 if which == "run" else 3)
    for image in images:
        assert image["complete"] and image["width"] > 200, image
        assert image["colors"] > 20 and 0.01 < image["inked"] < 0.9, image  # drawn, not blank
    if which == "file":
        assert "Explain <img src=x onerror=alert(1)> in plain words." in text  # shown as text, never run
    else:
        assert "The funnel: from generated to accepted" in text


def test_a_missing_browser_is_a_failure_not_a_skip():
    assert shutil.which("chromium") or CHROMIUM.exists()


@pytest.mark.parametrize("output, error", [
    (".", ". is a directory; give a file name to write to"),
    ("nofolder/r.html", "nofolder/r.html: cannot write there: nofolder is not an existing directory"),
])
@pytest.mark.slow
def test_an_unwritable_output_is_refused_before_any_work(dataset, tmp_path, output, error):
    done = subprocess.run([str(SCRIPT), "report", str(dataset), "-o", output], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == f"error: {error}\n", done.stderr


@pytest.mark.slow
def test_reports_of_files_differing_only_in_extension_do_not_collide(tmp_path):
    for name in ("data.json", "data.jsonl"):
        (tmp_path / name).write_text(json.dumps(RECORDS[0]) + "\n", encoding="utf-8")
        assert write_report(tmp_path / name) == tmp_path / f"{name}.report.html"
    assert len(list(tmp_path.glob("*.report.html"))) == 2


@pytest.mark.slow
def test_skipped_records_and_a_doubtful_lang_are_said(dataset, tmp_path):
    records = RECORDS + [{"instruction": 42}, ["not", "an", "object"]]
    dataset.write_text(json.dumps(records), encoding="utf-8")
    heard: list[str] = []
    page = write_report(dataset, lang="zh", notify=heard.append).read_text(encoding="utf-8")
    assert heard == [f"2 of 8 records skipped, the first: {dataset}:1: field 'instruction': expected a string, got int",
                     "--lang zh, but most instructions look en"]
    assert all(html.escape(note) in page for note in heard)


def test_a_run_with_nothing_accepted_still_shows_its_funnel_and_state(run):
    (run / "tasks.jsonl").write_text("", encoding="utf-8")
    (run / "summary.json").unlink()
    heard: list[str] = []
    page = write_report(run, notify=heard.append).read_text(encoding="utf-8")
    assert heard == [f"{run} has no summary yet: it is still running or was killed; this is what it has so far"]
    assert "The funnel: from generated to accepted" in page and "<td>accepted</td>" not in page
    assert "No accepted tasks yet" in page and "<h2>Numbers</h2>" not in page


def test_long_texts_are_cut_in_the_tables(dataset, seeds):
    long = "word " * 2000
    dataset.write_text(json.dumps([{"instruction": "Write about " + long, "input": "", "output": long}]),
                       encoding="utf-8")
    page = write_report(dataset, seeds=seeds).read_text(encoding="utf-8")
    assert page.count("more characters)") == 2 and long not in page


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["sharegpt", "messages"])
def test_chat_exports_are_read_back(run, fmt):
    """A report of the tool's own chat exports: one task per user turn (the instruction with its input)."""
    from selfinstruct import export_run

    path, count = export_run(run, fmt, card=False)
    data = load(path)
    assert data.records == count and data.unreadable == 0
    tasks = [json.loads(line) for line in (run / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    prompts = {t["instruction"] + (f"\n\n{i['input']}" if i["input"] else "") for t in tasks for i in t["instances"]}
    assert {t.instruction for t in data.tasks} == prompts
    assert write_report(path).is_file()


@pytest.mark.slow
def test_a_bad_json_line_is_skipped_and_said(tmp_path, seeds):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:3]) + "{not json\n" + json.dumps(RECORDS[3]) + "\n",
                    encoding="utf-8")
    heard: list[str] = []
    write_report(path, seeds=seeds, notify=heard.append)
    assert heard == [f"1 of 5 records skipped, the first: {path}:4: invalid JSON: Expecting property name enclosed "
                     "in double quotes (column 2)"]


@pytest.mark.slow
def test_candidates_not_needed_at_the_target_are_shown(run, monkeypatch):
    """Candidates neither rejected nor accepted (cut or skipped once the target was in reach) get a funnel step."""
    import selfinstruct.report.plots as plots

    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    tasks = len((run / "tasks.jsonl").read_text(encoding="utf-8").splitlines())
    rejected = len((run / "rejected.jsonl").read_text(encoding="utf-8").splitlines())
    summary["candidates_by_stage"]["generated"] = tasks + rejected + 4
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    drawn = []
    real = plots.funnel
    monkeypatch.setattr(plots, "funnel", lambda steps: (drawn.append(steps), real(steps))[1])
    write_report(run)
    assert drawn[0][0] == ("generated", tasks + rejected + 4) and drawn[0][-1] == ("accepted", tasks)
    assert ("not needed: target reached", 4) in drawn[0]


@pytest.mark.slow
def test_ctrl_c_during_a_report_writes_nothing(tmp_path):
    import signal
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import synthetic

    source = tmp_path / "big.json"
    source.write_text(json.dumps(synthetic.alpaca_records(20000, "en", seed=5)), encoding="utf-8")
    process = subprocess.Popen([str(SCRIPT), "report", str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(4)
    assert process.poll() is None, "the report finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err == "error: interrupted; nothing was written\n" and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]


def test_a_chat_record_with_a_lone_surrogate_is_skipped(tmp_path, seeds):
    path = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "Write a short poem about the sea."},
                         {"role": "assistant", "content": "Waves."}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(good).replace("Waves.", "\\ud800") + "\n", encoding="utf-8")
    heard: list[str] = []
    assert write_report(path, seeds=seeds, notify=heard.append).is_file()
    assert len(heard) == 1 and heard[0].startswith(f"1 of 2 records skipped, the first: {path}:2: field 'messages'")


@pytest.mark.slow
def test_the_run_report_says_what_a_new_reader_asked_for(run):
    """Issue 26: the closest pool instruction and its score beside a too_similar rejection; the embedded
    server named in the settings (not 'base_url None'); a histogram of the judge's scores; 'not needed'
    drawn grey, not red like a rejection."""
    from selfinstruct.report import plots
    from selfinstruct.store.journal import write_atomic

    rejected = [json.loads(line) for line in (run / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    similar = next(r for r in rejected if r["reason"] == "too_similar")
    closest = similar["most_similar"][0]
    tasks = [json.loads(line) for line in (run / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    for number, task in enumerate(tasks):
        task["judge"] = {"score": 3 + number % 3, "reason": "fine"}
    write_atomic(run / "tasks.jsonl", "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    config["settings"].update(local=True, base_url=None)
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    page = write_report(run).read_text(encoding="utf-8")
    assert f"<td>too_similar</td><td>{html.escape(similar['instruction'])[:40]}" in page
    assert html.escape(f"{closest['score']}: {closest['instruction']}")[:60] in page
    assert "<tr><td>base_url</td><td>the embedded llama.cpp server</td></tr>" in page
    assert "The judge&#x27;s scores" in page or "The judge's scores" in page
    assert 'alt="judge score histogram"' in page
    assert plots.funnel_color("not needed: target reached") != plots.funnel_color("too_similar")
    assert plots.funnel_color("accepted") != plots.funnel_color("too_similar")


def test_a_cjk_font_installed_after_matplotlib_cached_its_list_is_found(monkeypatch):
    """The report's hint (install fonts-wqy-microhei) did not work when followed: matplotlib's font list is
    a cache made on its first run. A font missing from it is looked for again in the system's folders.
    Here the cache is made stale by taking the CJK fonts out of it (.ci/run installs fonts-wqy-microhei)."""
    from matplotlib import font_manager

    from selfinstruct.report import plots

    manager = font_manager.fontManager
    assert plots.cjk_font() == "WenQuanYi Micro Hei"
    files = {font.fname for font in manager.ttflist if font.name in plots.CJK_FONTS}
    stale = [font for font in manager.ttflist if font.fname not in files]  # as cached before the install
    monkeypatch.setattr(manager, "ttflist", stale)
    assert plots._first_cjk(manager) is None
    assert plots.cjk_font() == "WenQuanYi Micro Hei"


def test_ring_labels_are_big_enough_to_read(monkeypatch):
    from selfinstruct.report import plots

    drawn = []
    monkeypatch.setattr(plots, "_png", lambda fig: drawn.append(fig) or b"")
    plots.sunburst([("write", 40, [("poem", 20), ("story", 10)]), ("explain", 30, [("idea", 15)])])
    sizes = {text.get_text(): text.get_fontsize() for text in drawn[0].axes[0].texts if text.get_text()}
    assert sizes["write"] >= 10 and sizes["poem"] >= 8 and sizes["idea"] >= 8, sizes


@pytest.mark.slow
def test_the_report_reads_an_hf_export_directory(run):
    """It failed with 'not a selfinstruct run directory' though the README says report reads what export
    writes. The page goes beside the directory, which stays an hf export (exporting again replaces it)."""
    from selfinstruct import export_run
    from selfinstruct.report.export import is_hf_export

    export_run(run, "hf")
    alpaca, count = export_run(run, "alpaca")
    page = write_report(run / "hf")
    assert page == run / "hf.report.html" and is_hf_export(run / "hf")
    from_hf, from_json = numbers_of(page.read_text(encoding="utf-8")), numbers_of(
        write_report(alpaca).read_text(encoding="utf-8"))
    assert from_hf["tasks"] == from_json["tasks"] and from_hf == from_json
    export_run(run, "hf")  # still an export of ours: replaced, not refused


def test_a_damaged_hf_export_or_no_datasets_is_one_line(run, monkeypatch, tmp_path):
    from selfinstruct.report.page import ReportError

    hf = tmp_path / "hf"
    hf.mkdir()
    from selfinstruct.report.export import HF_COLUMNS

    for name in ("state.json", "data-00000-of-00001.arrow"):
        (hf / name).write_text("{}")
    (hf / "dataset_info.json").write_text(json.dumps({"features": {column: {} for column in HF_COLUMNS}}))
    with pytest.raises(ReportError, match=r"hf: cannot read this hf export \("):  # its arrow file is not one
        load(hf)
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    with pytest.raises(ReportError, match=r"hf export; reading it needs the datasets package: pip install"):
        load(hf)


@pytest.mark.slow
def test_a_file_mixing_chinese_and_english_is_reported_per_language(tmp_path):
    """A mixed file was reported as one language: its Chinese records left the verb rings and were measured
    in words. Each language now has its verbs and lengths, in its own units, and the page says so."""
    records = ([{"instruction": f"Write a short poem about the {thing}.", "input": "", "output": f"A poem on {thing}s."}
                for thing in ("river", "harbour", "glacier", "orchard", "lantern", "violin", "compass", "meadow")]
               + [{"instruction": f"写一首关于{thing}的诗。", "input": "", "output": f"{thing}很美丽，我很喜欢。"}
                  for thing in ("春天", "大海", "月亮", "长江", "高山", "秋风")])
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    data = load(source)
    assert data.mixed == {"en": 8, "zh": 6}
    page = write_report(source).read_text(encoding="utf-8")
    assert "This dataset mixes English (8 tasks) and Chinese (6 tasks)" in page
    for heading in ("Diversity, English", "Diversity, Chinese", "Lengths, English in words",
                    "Lengths, Chinese in characters"):
        assert heading in page, heading
    assert "<tr><td>写</td><td>6</td><td>诗 6</td></tr>" in page  # the Chinese verb and its object
    assert "<tr><td>write</td><td>8</td><td>poem 8</td></tr>" in page
    numbers = numbers_of(page)  # each language's distinct-n in its own tokens; every parsed verb counted
    assert numbers["instructions with a parsed verb"] == "14 (100.0%)"
    assert {"distinct-1, en", "distinct-2, en", "distinct-1, zh", "distinct-2, zh"} <= set(numbers)
    assert "14 tasks, languages en and zh;" in page
    one = load(source, lang="en")  # a language given: one language, as asked
    assert one.mixed == {}
