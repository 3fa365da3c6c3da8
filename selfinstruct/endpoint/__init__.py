"""Asking a model: the HTTP client with retries (client.py), rate limits, prices, the embedded
llama.cpp server (local.py), --structured response formats, request slots, counts and progress,
and the ledger (ledger.py), the one path by which `generate` and `filter --judge` send requests:
journaled, budgeted, stopped by the failure rule.

May import: config, store, formats, text; never generation, dedup, report or the command line.
"""
