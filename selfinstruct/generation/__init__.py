"""The bootstrapping loop of `generate`: prompts, parsing answers, the methods (methods/), the judge,
the loop in rounds (loop.py), starting and resuming a run (session.py) and the dry run (plan.py).

May import: endpoint, config, store, text, formats; never dedup, report or the command line.
"""
