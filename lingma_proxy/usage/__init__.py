"""Usage you can see: a durable ledger of API requests (SQLite), its aggregates, and who sent what.

ledger.py writes one row per request off the event loop; clients.py names the sender; facts.py gathers a
finished request's row; report.py reads the aggregates for the `usage` command and /internal/usage.
"""
