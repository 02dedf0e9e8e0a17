"""``crowdsafe kafka up|down|status``: the local single-node broker (streams/ops/kafka_local.py);
``crowdsafe kafka acls``: topics and ACLs on a secured cluster (streams/ops/acls.py)."""

from __future__ import annotations

import argparse
import sys

from streams.config.settings import get_settings
from streams.ops import kafka_local
from streams.ops.topics import TopicPartitionsMismatch, ensure_app_topics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kafka", help="start, stop or inspect the local Kafka broker")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start the broker (fetches jars on first run)")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for ready")
    up.add_argument("--no-topics", action="store_true", help="do not create the app's topics")
    down = actions.add_parser("down", help="stop the broker")
    down.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL")
    actions.add_parser("status", help="up or down, pid, address, data dir (exit 3 if down)")
    actions.add_parser(
        "topics",
        help="create the app's missing topics on KAFKA_BOOTSTRAP (any cluster; idempotent)",
        description="Create the app's topics with CROWDSAFE_TOPIC_PARTITIONS partitions and "
        "CROWDSAFE_REPLICATION_FACTOR replicas, connecting with the KAFKA_* settings; an "
        "existing topic with another partition count is an error (exit 1). The init step of "
        "deploy/compose.yaml, so producers never wait for a topic the worker has not made yet.",
    )
    acls = actions.add_parser(
        "acls",
        help="create the app's topics and ACLs on a secured cluster (run as a super user)",
        description="Create the app's topics, then the ACLs of streams/ops/acls.py for the "
        "given SCRAM users, connecting with KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_USERNAME "
        "(a super user), KAFKA_SASL_PASSWORD_FILE and KAFKA_SSL_CAFILE. Idempotent.",
    )
    for role, what in [
        ("worker", "the stream worker"),
        ("edge", "cameras, gates, sensors, simulate, replay"),
        ("dispatch", "dispatch feeds (groups dispatch*)"),
        ("operator", "operators: acknowledge, resolve, silence (and write any --operator-topic)"),
    ]:
        acls.add_argument(f"--{role}", action="append", default=[], metavar="USER", help=what)
    acls.add_argument(
        "--operator-topic", action="append", default=[], metavar="TOPIC",
        help="another topic the operators may write (repeatable)",
    )  # fmt: skip
    acls.add_argument("--dry-run", action="store_true", help="print the ACLs, change nothing")
    p.set_defaults(func=run)


def run_acls(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from streams.config.kafka import KafkaConfigError, client_kwargs
    from streams.ops.acls import AclError, Principals, app_acls, apply_acls, describe

    settings = get_settings()
    principals = Principals(
        workers=[f"User:{u}" for u in args.worker],
        edges=[f"User:{u}" for u in args.edge],
        dispatchers=[f"User:{u}" for u in args.dispatch],
        operators=[f"User:{u}" for u in args.operator],
        operator_topics=args.operator_topic,
    )
    acls = app_acls(settings, principals)
    if args.dry_run:
        print("\n".join(describe(acls)))
        return 0
    try:
        created = ensure_app_topics(settings)
        if created:
            print(f"kafka: created topics {', '.join(created)}")
        apply_acls(client_kwargs(settings), acls)
    except (AclError, KafkaConfigError, KafkaError, TopicPartitionsMismatch) as e:
        print(f"crowdsafe kafka acls: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"kafka: {len(acls)} ACLs in place on {settings.kafka_bootstrap}")
    return 0


def run_topics() -> int:
    from kafka.errors import KafkaError

    from streams.config.kafka import KafkaConfigError

    settings = get_settings()
    try:
        created = ensure_app_topics(settings)
    except (KafkaConfigError, KafkaError, TopicPartitionsMismatch) as e:
        print(f"crowdsafe kafka topics: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"kafka: created topics {', '.join(created)}" if created else "kafka: topics present")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "acls":
        return run_acls(args)
    if args.action == "topics":
        return run_topics()
    settings = get_settings()
    config = kafka_local.BrokerConfig.from_settings(settings)
    try:
        if args.action == "up":
            kafka_local.up(config, timeout_s=args.timeout)
            if not args.no_topics:
                # Auto-creation is off on this broker, so the edge producer would block on
                # metadata for crowd.readings until the worker had declared it.
                created = ensure_app_topics(settings, config.bootstrap)
                if created:
                    print(f"kafka: created topics {', '.join(created)}")
            _hint_bootstrap(settings.kafka_bootstrap, config.bootstrap)
        elif args.action == "down":
            kafka_local.down(config, grace_s=args.timeout)
        else:
            state = kafka_local.status(config)
            print(state.describe())
            _hint_bootstrap(settings.kafka_bootstrap, config.bootstrap)
            return 0 if state.running else 3  # LSB: "program is not running"
    except (kafka_local.KafkaLocalError, TopicPartitionsMismatch) as e:
        print(f"crowdsafe kafka {args.action}: {e}", file=sys.stderr)
        return 1
    return 0


def _hint_bootstrap(configured: str, local: str) -> None:
    if configured != local:
        print(f"kafka: note: KAFKA_BOOTSTRAP is {configured}; the app will not use this broker")
