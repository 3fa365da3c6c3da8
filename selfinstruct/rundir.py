"""The run directory: settings, journals and summary of one generation run.

``config.json``     the resolved settings (never the API key) and their signature
``responses.jsonl`` every model response (or final failure), keyed by a hash of its request
``tasks.jsonl``     accepted tasks, in the order they joined the pool
``rejected.jsonl``  rejected candidates, each with its reason
``summary.json``    counts per stage and reason, requests, tokens, wall time
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import signature_changes
from .journal import Journal, JournalError, write_atomic


class RunDirError(RuntimeError):
    pass


class SignatureMismatch(RunDirError):
    def __init__(self, path: Path, changes: list[str]):
        self.changes = changes
        listing = "\n".join(f"  {line}" for line in changes)
        super().__init__(f"{path} was started with different settings:\n{listing}\n"
                         "Resume with the original settings, use another --output, "
                         "or pass --allow-changes to continue anyway.")


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.responses = Journal(self.path / "responses.jsonl")
        self.tasks = Journal(self.path / "tasks.jsonl")
        self.rejected = Journal(self.path / "rejected.jsonl")
        self.resumed = False
        self.previous_summary: dict = {}

    @classmethod
    def open(cls, path: Path, settings: dict, signature: dict, allow_changes: bool = False) -> RunDir:
        """Create a run directory, or reopen one to resume it (checking the signature)."""
        run = cls(path)
        config_file = run.path / "config.json"
        if config_file.exists():
            try:
                stored = json.loads(config_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise RunDirError(f"{config_file}: unreadable ({exc})") from None
            changes = signature_changes(stored.get("signature", {}), signature)
            if changes and not allow_changes:
                raise SignatureMismatch(run.path, changes)
            run.resumed = True
            summary_file = run.path / "summary.json"
            if summary_file.exists():
                try:
                    run.previous_summary = json.loads(summary_file.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    run.previous_summary = {}
            if not changes:
                return run
        elif run.path.exists() and (not run.path.is_dir() or any(run.path.iterdir())):
            raise RunDirError(f"{run.path} exists and is not a selfinstruct run directory (no config.json); "
                              "choose an empty or new --output")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {run.path}: {exc.strerror or exc}") from None
        try:
            write_atomic(config_file, json.dumps({"settings": settings, "signature": signature},
                                                 ensure_ascii=False, indent=2) + "\n")
            for journal in (run.responses, run.tasks, run.rejected):
                journal.path.touch()
        except (JournalError, OSError) as exc:
            raise RunDirError(f"run directory {run.path} is not writable: {exc}") from None
        return run

    def write_summary(self, summary: dict) -> None:
        write_atomic(self.path / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")

    def sync(self) -> None:
        for journal in (self.responses, self.tasks, self.rejected):
            journal.sync()

    def close(self) -> None:
        for journal in (self.responses, self.tasks, self.rejected):
            journal.close()
