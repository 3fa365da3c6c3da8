"""Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way.

The public names load on first use, so that the command line starts (and a Ctrl+C during its
start is handled) before the heavy imports (the openai SDK, numpy) happen.
"""

import importlib

_PUBLIC = {"Config": "config", "generate": "generation.session", "resume": "generation.session",
           "Interrupted": "generation.session", "export_run": "report.export", "filter_dataset": "dedup.command",
           "RunStopped": "endpoint.ledger", "FatalAPIError": "endpoint.client", "write_report": "report.page"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'selfinstruct' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
