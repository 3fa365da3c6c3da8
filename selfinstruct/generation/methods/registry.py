"""Every method, by its --mode value (config.MODES lists the same names, for checking settings)."""

from __future__ import annotations

from selfinstruct.config import MODES
from selfinstruct.generation.methods.alpaca import Alpaca
from selfinstruct.generation.methods.base import Method
from selfinstruct.generation.methods.evol import Evol
from selfinstruct.generation.methods.self_instruct import SelfInstruct

METHODS: dict[str, type[Method]] = {method.name: method for method in (SelfInstruct, Alpaca, Evol)}
if tuple(METHODS) != MODES:
    raise ImportError(f"config.MODES {MODES} must list the methods {tuple(METHODS)}, in order")
