"""Pure translation between vendor wire formats and the internal model: no I/O here."""
