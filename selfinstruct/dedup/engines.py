"""Where ``dedup`` probes: each engine's name and the class that does it.

An engine is made with (Items, workers, block) and has ``add(entries)`` (kept records join its index),
``probe(first, stop) -> Matches`` (input records first..stop-1 against them), ``notes()`` (what it did,
to print) and ``close()``. Engines only split the probing, so every engine gives the same decisions.
"""

from __future__ import annotations

from selfinstruct.dedup.on_ray import RayProbe
from selfinstruct.dedup.on_threads import LocalProbe

# Add an engine here; ``filter --engine`` offers these names.
ENGINES = {"local": LocalProbe, "ray": RayProbe}
