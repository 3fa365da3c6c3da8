"""Reading model output back into instructions, labels, instances, tasks and rewrites.

Model output is untrusted: every parser returns what it could read and never raises on odd text.
A chat model seldom answers in exactly the prompt's format: it opens with "Sure! Here are more
tasks:", bolds its labels and headings (``**Input:**``, ``### Example 2``, ``**示例2：**``), quotes
inputs, answers with bullets, closes with "Let me know if you need more!", or returns JSON. The
parsers keep each item's text exactly and drop only that scaffolding; an item that cannot be used
(cut off, empty, missing a field) is returned in ``dropped`` with its reason, for the caller to
record as a rejection. ``continued=True`` means the text continues the prompt (completion API), so
the opening the prompt ended with is put back in front before parsing.

``markup`` (the scaffolding and the helpers that strip it) < ``json_in_text`` (JSON in an answer) <
``items`` (lists of instructions, instances, tasks), ``yes_no``, ``rewrite``. These modules import
only each other and ``selfinstruct.formats``: the parsing may import nothing else.
"""
