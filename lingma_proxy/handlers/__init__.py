"""Thin Tornado handlers, one module per surface."""
