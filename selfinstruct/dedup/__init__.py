"""The ``filter`` command: a dataset's records dropped by the heuristic rules and by greedy ROUGE-L dedup.

command (filter_dataset) runs it: read (the first read: rules, token ids) fills a corpus (corpus;
against for --against datasets); greedy decides the records a block at a time, probing the kept
records through an engine (engines: on_threads, or on_ray), over index, layout and kernels (the only
modules that import numba; Ray is imported only when its engine is made); write is the second read,
putting each record where its decision sends it; targets checks the paths, result holds what it ends with.

It may import paths, formats, text, config, store, endpoint (progress) and, for --judge, generation's
judge; nothing above it (report, cli).
"""
