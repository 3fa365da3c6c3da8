"""Datasets as files and records: the one task type (task.Task, task.Instance), reading JSON arrays
and JSON lines (records), and for each record layout one reader and one writer (alpaca, seed_layout,
chat; layouts tells a record's layout), with the seed files a run starts from (seeds).

May import: paths and errors only (the lowest layer above them).
"""
