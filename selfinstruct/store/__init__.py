"""What lasts on disk: append-only journals written whole lines at a time (journal.py) and the run
directory with its versioned config.json, migrations, lock and derived files (rundir.py).

May import: paths, formats (reading JSON); nothing above it (settings are checked by config).
"""
