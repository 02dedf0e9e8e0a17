"""``crowdsafe dispatch``: the police dispatch feed of ``crowd.alerts``.

A consumer-group client (kafka-python) that commits each alert's offset after printing it, so a
restarted feed neither loses nor repeats alerts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

SEVERITY_MARK = {"warning": "!", "critical": "!!!"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dispatch", help="print alerts from crowd.alerts as they happen")
    p.add_argument("--group", default="dispatch", help="consumer group (default: dispatch)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--from",
        dest="start",
        choices=["earliest", "latest"],
        default="earliest",
        help="where a new group starts (default: every alert still on the topic)",
    )
    p.add_argument("--max", type=int, help="stop after this many alerts")
    p.add_argument("--idle-timeout", type=float, help="stop after this many seconds without alerts")
    p.set_defaults(func=run)


def format_alert(alert: dict) -> str:
    """One readable line per alert.

    >>> format_alert({"ts": 0, "severity": "critical", "state": "raised", "kind": "density",
    ...               "zone_id": "z", "message": "Z: too dense", "alert_id": "z/density/0"})[8:]
    ' !!! CRITICAL RAISED    density  z  Z: too dense  [z/density/0]'
    """
    when = datetime.fromtimestamp(alert["ts"] / 1000).strftime("%H:%M:%S")
    mark = SEVERITY_MARK.get(alert["severity"], "") if alert["state"] != "cleared" else "ok"
    return (
        f"{when} {mark:>3} {alert['severity'].upper():8} {alert['state'].upper():10}"
        f"{alert['kind']:8} {alert['zone_id']}  {alert['message']}  [{alert['alert_id']}]"
    )


def run(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer

    from streams.config.kafka import client_kwargs
    from streams.config.settings import get_settings

    settings = get_settings()
    consumer = KafkaConsumer(
        settings.alerts_topic,
        **client_kwargs(settings),
        bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset=args.start,  # by default a new group sees every alert still kept
        consumer_timeout_ms=int(args.idle_timeout * 1000) if args.idle_timeout else float("inf"),
    )
    handled = 0
    try:
        for message in consumer:
            try:
                alert = json.loads(message.value)
                line = json.dumps(alert, ensure_ascii=False) if args.json else format_alert(alert)
            except (ValueError, KeyError, TypeError) as exc:
                line = f"dispatch: unreadable alert at offset {message.offset}: {exc}"
            print(line, flush=True)
            consumer.commit()  # after handling: a crash before this repeats, never loses
            handled += 1
            if args.max and handled >= args.max:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    print(f"dispatch: {handled} alert(s) handled", file=sys.stderr)
    return 0
