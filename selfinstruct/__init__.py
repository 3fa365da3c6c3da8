"""Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way."""

from .config import Config
from .export import export_run
from .filtering import filter_dataset
from .pipeline import RunStopped
from .report import write_report
from .runner import Interrupted, generate, resume

__all__ = ["Config", "generate", "resume", "export_run", "filter_dataset", "RunStopped", "Interrupted", "write_report"]
