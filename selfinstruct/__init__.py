"""Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way."""

from .config import Config
from .export import export_run
from .filtering import filter_dataset
from .runner import generate

__all__ = ["Config", "generate", "export_run", "filter_dataset"]
