"""The fuzz plan's labels, checked in process: what the fuzz test expects of the live worker is
fixed by construction (streams/testing_fuzz.py); here the worker's own parser and processor must
agree with every label, so a wrong label is caught in a second, not after a live run."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.schema.intake import Rejected, parse_message
from streams.testing_fuzz import MESSAGE_CLASSES, REASON_PREFIX, draw_plan
from streams.zone.processor import ZoneProcessor


def test_every_label_is_what_the_worker_code_does():
    site = load_site(bundled_site())
    plan = draw_plan(site, hostile=1500, big=30, seed=7)
    processor = ZoneProcessor(site)
    states: dict = defaultdict(lambda: None)
    got, wrong = Counter(), []
    now = int(time.time() * 1000)
    for m in plan.messages:
        try:
            readings = parse_message(m.key, m.value, site)
        except Rejected as exc:
            got[f"dl:{exc.code}"] += 1
            if m.fate != exc.code or not str(exc).startswith(REASON_PREFIX[m.fate]):
                wrong.append((m.case, m.fate, exc.code, str(exc)[:100]))
            continue
        if m.fate in MESSAGE_CLASSES:
            wrong.append((m.case, m.fate, "parsed", ""))
            continue
        zone = readings[0].zone_id
        out = processor.apply(zone, states[zone], readings, now)
        states[zone] = out.state
        got["applied"] += len(out.applied)
        got["duplicates"] += out.duplicates
        for r in out.rejected:
            got[f"dl:{r.code}"] += 1
        if (len(out.applied), out.duplicates) != (m.applied, m.duplicates) or Counter(
            r.code for r in out.rejected
        ) != m.reading_dead:
            wrong.append((m.case, m.applied, m.duplicates, dict(m.reading_dead), out.duplicates))
    assert wrong == []
    want = {k: v for k, v in plan.totals().items() if k.startswith("dl:")}
    want |= {"applied": plan.totals()["applied"], "duplicates": plan.totals()["duplicates"]}
    assert dict(got) == want
    # The plan has every kind of message, and each class of dead letter.
    assert {m.fate for m in plan.messages} == {*MESSAGE_CLASSES, "valid", "resend"}
    assert {c.split("/")[0] for c in plan.cases()} >= {"big", "valid"}
    assert set(REASON_PREFIX) == {k.removeprefix("dl:") for k in want if k.startswith("dl:")}
    assert plan.totals()["duplicates"] > 0 and plan.totals()["misplaced"] > 0
