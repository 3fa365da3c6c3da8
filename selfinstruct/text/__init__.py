"""Text: the language of a text and its length, ROUGE-L (rouge.py) and the heuristic rules (rules.py)
that turn an instruction or an instance away, each with its reason.

May import: formats (the task type); nothing above it.
"""
