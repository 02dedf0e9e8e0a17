"""``crowdsafe incidents``: act on incidents and review them, one command at a time.

``ack`` / ``resolve`` write an acknowledgement or resolution to ``crowd.alerts.ack`` and
``silence`` a silence to ``crowd.silences`` (keyed by zone id; the worker validates and records
them); ``list`` rebuilds the open incidents from ``crowd.alerts`` alone; ``export`` writes each
incident's timeline from ``crowd.audit`` and ``crowd.alerts`` for after-action review. Reads go
to the topics' current end and stop.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

READ_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="acknowledge, resolve, silence, list or export incidents")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for verb, what in (("ack", "acknowledge"), ("resolve", "resolve (once cleared)")):
        a = actions.add_parser(verb, help=f"{what} an incident (crowd.alerts.ack)")
        a.add_argument("incident_id", help="zone/category/started_at, as `list` shows it")
        a.add_argument("--as", dest="who", required=True, metavar="NAME", help="who you are")
        a.add_argument("--note", help="a note kept with it (audit, the incident)")
    s = actions.add_parser(
        "silence",
        help="silence a zone (or one source of it) for a while (crowd.silences)",
        description="Silenced transitions are recorded but not routed until the silence ends; "
        "a critical density alert is never silenced.",
    )
    s.add_argument("--zone", required=True, help="zone id")
    s.add_argument("--source", help="only this source's technical alerts")
    s.add_argument("--for", dest="duration", help="how long: 30m, 2h, 1h30m, 1d")
    s.add_argument("--reason", help="why (maintenance, planned event, ...)")
    s.add_argument("--as", dest="who", required=True, metavar="NAME", help="who you are")
    s.add_argument("--expire", metavar="ID", help="end the silence with this id now")
    ls = actions.add_parser("list", help="the open incidents, rebuilt from crowd.alerts")
    ls.add_argument("--zone", action="append", default=[], help="only this zone (repeatable)")
    ls.add_argument("--severity", choices=["warning", "critical"], help="this and above only")
    ls.add_argument("--json", action="store_true", help="one JSON record per line")
    e = actions.add_parser(
        "export",
        help="each incident's timeline (crowd.audit, crowd.alerts) as CSV or JSON",
        description="Every transition, acknowledgement, resolution, escalation, routing "
        "delivery and silence with who, what, when and why. Times are ISO dates or date-times, "
        "in the site's time zone unless they carry an offset; --to DATE includes that day.",
    )
    e.add_argument("--from", dest="start", metavar="T", help="events at or after T")
    e.add_argument("--to", dest="end", metavar="T", help="events before T")
    e.add_argument("--format", choices=["csv", "json"], default="csv", help="default: csv")
    e.add_argument("--out", type=Path, help="file to write (default: stdout)")
    p.set_defaults(func=run)


def _fail(text: str) -> int:
    print(f"crowdsafe incidents: {text}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from streams.config.settings import get_settings

    settings = get_settings()
    try:
        if args.action in ("ack", "resolve"):
            return _ack(args, settings)
        if args.action == "silence":
            return _silence(args, settings)
        if args.action == "list":
            return _list(args, settings)
        return _export(args, settings)
    except ValueError as exc:  # a bad argument found late (a time, a duration, an id)
        return _fail(str(exc))


def _send(settings, topic: str, key: str, struct) -> str:
    import msgspec

    from streams.dispatch import clients

    p = clients.producer(settings)
    try:
        md = clients.send(p, topic, key, msgspec.json.encode(struct))
    finally:
        p.close(timeout=5)
    return f"{topic} {md.partition}:{md.offset}"


def _person(who: str) -> str:
    if not who.strip() or len(who) > 128:
        raise ValueError("--as needs a name (at most 128 characters)")
    return who


def _ack(args: argparse.Namespace, settings) -> int:
    from streams.dispatch.console import zone_of
    from streams.schema.incident import Ack

    ack = Ack(
        incident_id=args.incident_id,
        by=_person(args.who),
        ts=int(time.time() * 1000),
        action="ack" if args.action == "ack" else "resolve",
        note=args.note,
    )
    where = _send(settings, settings.acks_topic, zone_of(args.incident_id), ack)
    what = "acknowledgement" if args.action == "ack" else "resolution"
    print(f"{what} of {args.incident_id} sent as {args.who} ({where})")
    return 0


def _silence(args: argparse.Namespace, settings) -> int:
    from streams.config.site import load_site
    from streams.dispatch.console import local_time
    from streams.dispatch.timeline import parse_duration
    from streams.schema.incident import Silence

    site = load_site(settings.site)
    zones = [z.id for z in site.zones]
    if args.zone not in zones:
        return _fail(f"unknown zone '{args.zone}' (zones: {zones})")
    if args.source and args.source not in [s.id for s in site.sources if args.zone in s.zones]:
        return _fail(f"'{args.source}' is no source of zone '{args.zone}'")
    now = int(time.time() * 1000)
    who = _person(args.who)
    if args.expire:
        silence = Silence(
            silence_id=args.expire, zone_id=args.zone, source_id=args.source, by=who,
            reason=args.reason or f"expired by {who}", ts=now, ends_at=now, action="expire",
        )  # fmt: skip
        where = _send(settings, settings.silences_topic, args.zone, silence)
        print(f"silence {args.expire} on {args.zone} expired by {who} ({where})")
        return 0
    if not args.duration or not (args.reason or "").strip():
        return _fail("silence needs --for DURATION and --reason TEXT (or --expire ID)")
    seconds = parse_duration(args.duration)
    longest = site.incidents.max_silence_s
    if not 0 < seconds <= longest:
        return _fail(f"--for {args.duration}: a silence lasts more than 0 s and at most "
                     f"{longest:g} s (site file [incidents] max_silence_s)")  # fmt: skip
    silence = Silence(
        silence_id=f"sil-{uuid.uuid4().hex[:12]}", zone_id=args.zone, source_id=args.source,
        by=who, reason=args.reason, ts=now, starts_at=now, ends_at=now + int(seconds * 1000),
    )  # fmt: skip
    where = _send(settings, settings.silences_topic, args.zone, silence)
    from zoneinfo import ZoneInfo

    until = local_time(silence.ends_at, ZoneInfo(site.site.timezone))
    target = f"{args.zone}/{args.source}" if args.source else args.zone
    print(f"silence {silence.silence_id} on {target} until {until} by {who} ({where})")
    print(f"  end it early: crowdsafe incidents silence --expire {silence.silence_id} "
          f"--zone {args.zone} --as NAME")  # fmt: skip
    return 0


def _list(args: argparse.Namespace, settings) -> int:
    from zoneinfo import ZoneInfo

    from streams.config.site import load_site
    from streams.dispatch.console import (
        Filters,
        Unreadable,
        decode,
        format_transition,
        open_incidents,
        summary_header,
    )

    site = load_site(settings.site)
    tz = ZoneInfo(site.site.timezone)
    records, raw = [], {}
    for r in _read(settings, settings.alerts_topic):
        try:
            rec = decode(r.value)
        except Unreadable:
            continue
        records.append(rec)
        raw[(rec.incident_id, rec.seq)] = r.value
    found = open_incidents(records, Filters(zones=frozenset(args.zone), severity=args.severity))
    now = int(time.time() * 1000)
    if args.json:
        for rec in found:
            print(raw[(rec.incident_id, rec.seq)].decode())
        return 0
    print(summary_header(len(found), tz, site.site.timezone, now, settings.alerts_topic))
    for i, rec in enumerate(found, 1):
        print(format_transition(rec, i, tz, now))
        print(f"     id {rec.incident_id}")
    return 0


def _read(settings, topic: str) -> list:
    from streams.dispatch import clients

    try:
        return clients.read_to_end(settings, topic, READ_TIMEOUT_S)
    except (clients.TopicMissing, TimeoutError) as exc:
        raise SystemExit(f"crowdsafe incidents: {exc}") from None


def _export(args: argparse.Namespace, settings) -> int:
    from zoneinfo import ZoneInfo

    from streams.config.site import load_site
    from streams.dispatch import timeline as tl
    from streams.dispatch.console import Unreadable, local_time

    site = load_site(settings.site)
    tz = ZoneInfo(site.site.timezone)
    start = tl.parse_time(args.start, tz) if args.start else None
    end = tl.parse_time(args.end, tz, end=True) if args.end else None

    def events(topic: str, convert) -> list:
        out, bad = [], 0
        for r in _read(settings, topic):
            try:
                out.append(convert(r.value, tz))
            except Unreadable:
                bad += 1
        if bad:
            print(f"incidents: skipped {bad} unreadable record(s) of {topic}", file=sys.stderr)
        return out

    incidents = tl.timeline(
        events(settings.audit_topic, tl.audit_event),
        events(settings.alerts_topic, tl.alert_event),
        start,
        end,
    )
    if args.format == "csv":
        text = tl.to_csv(incidents)
    else:
        meta = {
            "site": site.site.id,
            "timezone": site.site.timezone,
            "from": local_time(start, tz) if start is not None else None,
            "to": local_time(end, tz) if end is not None else None,
        }
        text = tl.to_json(incidents, meta)
    if args.out:
        args.out.write_text(text)
        n = len([k for k in incidents if k])
        print(f"incidents: {n} incident(s) written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
