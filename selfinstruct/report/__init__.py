"""What a run or dataset becomes for people: exports (export.py) and the HTML report (page.py) of what
it reads (dataset.py), with its numbers (figures.py), figures (plots.py, matplotlib loaded when drawn)
and diversity measures (diversity.py).

May import: every layer below it (formats, text, store, config, dedup's reading); never the command line.
"""
