"""The report's figures, drawn with matplotlib and returned as PNG bytes to embed in the page.

Chinese labels need a font with CJK glyphs; the first one installed of a list of common ones is
used, and ``cjk_font()`` says whether there is one so the report can tell the user.
"""

from __future__ import annotations

import io
import warnings

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
LABELLED_SHARE = 0.035  # narrower verb wedges go unlabelled (the table below the figure names them all)
VERB_PT, NOUN_PT = 10, 8  # ring labels, in points: 6.5 was too small to read


def pyplot():
    """matplotlib's pyplot, loaded when a report is drawn (the 'report' extra; ImportError without it)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: figures are only ever written to bytes
    import matplotlib.pyplot

    return matplotlib.pyplot


def cjk_font() -> str | None:
    """The first CJK font of CJK_FONTS that matplotlib knows. matplotlib lists fonts from a cache made
    when it first ran: a font installed since (following the report's own hint) is not in it, so when
    none is found the system's font folders are read again for files the cache does not know."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _first_cjk(manager)
    if found is None:
        known = {font.fname for font in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # a damaged font file: not ours to mend
                    continue
        found = _first_cjk(manager)
    return found


def _first_cjk(manager) -> str | None:
    installed = {font.name for font in manager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _colors() -> tuple:
    return pyplot().get_cmap("tab20").colors


def _style() -> None:
    cjk = cjk_font()
    pyplot().rcParams.update({"font.family": ["DejaVu Sans"] + ([cjk] if cjk else []),  # CJK glyphs fall back to cjk
                         "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a missing glyph is said once, in the page, not per character
        warnings.filterwarnings("ignore", "Glyph .* missing from font")
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def sunburst(top: list[tuple[str, int, list[tuple[str, int]]]]) -> bytes:
    """Verbs in the inner ring, each verb's commonest object nouns in the outer ring (the paper's Figure 2)."""
    _style()
    colors = _colors()
    fig, ax = pyplot().subplots(figsize=(8.5, 8.5))
    inner_sizes, inner_labels, outer_sizes, outer_labels, outer_colors = [], [], [], [], []
    total = sum(count for _, count, _ in top)
    for k, (verb, count, nouns) in enumerate(top):
        color = colors[k % len(colors)]
        inner_sizes.append(count)
        inner_labels.append(verb if count >= LABELLED_SHARE * total else "")
        shown = sum(n for _, n in nouns)
        for noun, n in nouns:
            outer_sizes.append(n)
            outer_labels.append(noun if n >= LABELLED_SHARE / 2 * total else "")
            outer_colors.append((*color[:3], 0.55))
        outer_sizes.append(count - shown)  # the verb's other objects, or none
        outer_labels.append("")
        outer_colors.append((1, 1, 1, 0))
    ax.pie(inner_sizes, radius=0.62, labels=inner_labels, labeldistance=0.62, colors=colors[:len(top)],
           wedgeprops={"width": 0.42, "edgecolor": "white"}, textprops={"ha": "center", "fontsize": VERB_PT})
    ax.pie(outer_sizes, radius=1.0, labels=outer_labels, labeldistance=0.82, colors=outer_colors,
           wedgeprops={"width": 0.38, "edgecolor": "white"}, textprops={"ha": "center", "fontsize": NOUN_PT},
           rotatelabels=True)
    ax.set(aspect="equal")
    return _png(fig)


def histograms(panels: list[tuple[str, list[float], str]], bins: int | list[float] = 30) -> bytes:
    """One histogram per (title, values, x label), side by side."""
    _style()
    fig, axes = pyplot().subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, values, xlabel) in zip(axes[0], panels):
        if values:
            ax.hist(values, bins=bins, color="#4C78A8", edgecolor="white")
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set(title=title, xlabel=xlabel, ylabel="count")
    fig.tight_layout()
    return _png(fig)


def funnel_color(label: str) -> str:
    """Green for accepted, blue for generated, grey for candidates the target made unneeded, red for a rule."""
    for start, color in (("accepted", "#54A24B"), ("generated", "#4C78A8"), ("not needed", "#BAB0AC")):
        if label.startswith(start):
            return color
    return "#E45756"


def scores(counts: dict[str, list[int]]) -> bytes:
    """The judge's scores (1-5), one bar group per kind of task (accepted, rejected as low_score)."""
    _style()
    fig, ax = pyplot().subplots(figsize=(5.5, 3.0))
    width = 0.8 / max(len(counts), 1)
    for k, (label, values) in enumerate(counts.items()):
        heights = [values.count(score) for score in range(1, 6)]
        bars = ax.bar([score - 0.4 + width * (k + 0.5) for score in range(1, 6)], heights, width, label=label,
                      color=("#54A24B", "#E45756", "#BAB0AC")[k % 3])
        ax.bar_label(bars, padding=2, fontsize=8)
    ax.set(xlabel="score", ylabel="tasks", xticks=range(1, 6))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def funnel(steps: list[tuple[str, int]]) -> bytes:
    """Horizontal bars from generated to accepted, one per rejection rule in between."""
    _style()
    fig, ax = pyplot().subplots(figsize=(7.5, 0.32 * len(steps) + 0.8))
    labels = [label for label, _ in steps][::-1]
    values = [value for _, value in steps][::-1]
    bars = ax.barh(labels, values, color=[funnel_color(label) for label in labels])
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set(xlabel="candidates")
    ax.margins(x=0.12)
    fig.tight_layout()
    return _png(fig)
