"""Ways to grow a dataset: one module per method, each a ``Method`` (base.py) listed in registry.py.

A method sees its run only through a ``Context`` (base.py): the settings, the prompts, the seeds,
the pool, and the run's ask, screen and reject. To add a method: copy ``alpaca.py`` (one request
yields whole tasks) or ``self_instruct.py`` (later requests per candidate), write its prompts under
``prompts/<lang>/``, list it in registry.py and its name in ``config.MODES``.

May import: config, formats, text, generation's candidate, parsing and prompts; never the loop.
"""
