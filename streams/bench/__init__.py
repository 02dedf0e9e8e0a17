"""Benchmark suites for ``crowdsafe bench``: one module each, exposing ``run(quick: bool) -> dict``.

Suites report medians and ratios measured in one run, never absolute pass/fail times.
"""
