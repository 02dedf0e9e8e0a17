"""Which routes a transition goes to: the site file's ``[[routing]]`` rules.

>>> from streams.config.incidents import Escalation, Rule
>>> rules = [Rule(routes=["staff"], categories=["crowd"]),
...          Rule(routes=["police"], categories=["crowd"], severities=["critical"]),
...          Rule(routes=["police"], min_tier="street")]
>>> ladder = Escalation()
>>> routes_for(rules, ladder, "z", "crowd", {"density"}, "warning", 0)
['staff']
>>> routes_for(rules, ladder, "z", "crowd", {"density"}, "critical", 0)
['police', 'staff']
>>> routes_for(rules, ladder, "z", "technical", {"source-offline"}, "warning", 2)
['police']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from streams.config.incidents import Escalation, Rule


def matches(
    rule: Rule,
    ladder: Escalation,
    zone_id: str,
    category: str,
    kinds: Iterable[str],
    severity: str,
    tier: int,
) -> bool:
    """Every condition the rule gives holds (an empty list matches anything)."""
    if rule.zones and zone_id not in rule.zones:
        return False
    if rule.categories and category not in rule.categories:
        return False
    if rule.kinds and not set(rule.kinds) & set(kinds):
        return False
    if rule.severities and severity not in rule.severities:
        return False
    return rule.min_tier is None or tier >= ladder.index(rule.min_tier)


def routes_for(
    rules: Sequence[Rule],
    ladder: Escalation,
    zone_id: str,
    category: str,
    kinds: Iterable[str],
    severity: str,
    tier: int,
) -> list[str]:
    """The routes of every matching rule, sorted, each once."""
    kinds = set(kinds)
    out: set[str] = set()
    for rule in rules:
        if matches(rule, ladder, zone_id, category, kinds, severity, tier):
            out.update(rule.routes)
    return sorted(out)
