"""Benchmark suites for ``crowdsafe bench``: one module each, exposing ``run(quick: bool) -> dict``
(or ``run(quick, results)`` to see the suites that ran before it in the same bench). Modules
whose name starts with ``_`` are helpers, not suites.

Suites report medians and ratios measured in one run, never absolute pass/fail times, and bound
every wait: a measurement that cannot be made is ``None`` with ``<key>_reason`` beside it.
"""
