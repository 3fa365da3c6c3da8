"""Placeholder until its owner writes it.

May import: lower layers.
"""
