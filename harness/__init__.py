"""The dev harness that tests and benchmarks share: a real proxy or a bare simulator, started on free ports."""
