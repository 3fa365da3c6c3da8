"""Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way."""

from .config import Config
from .export import export_run
from .runner import generate

__all__ = ["Config", "generate", "export_run"]
