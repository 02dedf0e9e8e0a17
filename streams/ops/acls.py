"""Who may read and write which crowdsafe topic: the ACLs for a cluster whose authoriser
denies whatever no ACL allows (``allow.everyone.if.no.acl.found=false``).

=============  ==========================================================================
principal      may
=============  ==========================================================================
worker         read ``crowd.readings``, its ticks, ``crowd.alerts.ack``, ``crowd.silences``
               and the routes (``crowd.dispatch.*``: its webhook agents); write
               ``crowd.zone-state``, ``crowd.alerts``, ``crowd.deadletter``, ``crowd.audit``,
               ``crowd.alerts.cap``, the routes, its ticks, and ``crowd.readings``, the acks
               and silences (it re-routes a message found in the wrong partition); create,
               read and write the Faust internal topics (``{app_id}-`` prefixed: table
               changelogs, the assignor's leader topic); consume in group ``{app_id}``
edge           write ``crowd.readings`` (cameras, gates, sensors, ``simulate``, ``replay``)
dispatch       read ``crowd.alerts``, ``crowd.audit`` and the routes, in consumer groups
               named ``dispatch*``; write ``crowd.alerts.ack`` (acknowledge, resolve)
operator       write ``crowd.alerts.ack`` and ``crowd.silences`` (supervisors, and the command
               centre, which signs each record with its logged-in user), and any
               ``operator_topics`` named by the caller; read ``crowd.alerts``, ``crowd.audit``,
               ``crowd.zone-state``, ``crowd.alerts.ack``, ``crowd.silences`` (what the centre
               shows; it reads every partition, in no consumer group)
=============  ==========================================================================

Nobody but the worker (and super users) can write an alert, a zone state, an audit record or a
route's record: a forged ``cleared`` alert from an edge box is refused by the broker. Nobody but
an operator silences. Topics are created by the admin
(``crowdsafe kafka acls`` does, as ``crowdsafe kafka up`` does locally); the worker only checks
them, so it has no right to create the app's topics, nor to change their configs.

Idempotent producers need no ``IdempotentWrite`` on the cluster since Kafka 3.0 (KIP-679:
``Write`` on a topic implies it); no principal gets cluster-wide rights here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)

from streams.config.settings import Settings

Op = ACLOperation
READ = (Op.READ, Op.DESCRIBE)
WRITE = (Op.WRITE, Op.DESCRIBE)


@dataclass(frozen=True)
class Principals:
    """Kafka principals (``User:<SCRAM user name>``) by role; several per role allowed."""

    workers: Sequence[str] = ()
    edges: Sequence[str] = ()
    dispatchers: Sequence[str] = ()
    operators: Sequence[str] = ()
    # More topics the operators write, named by the caller (acks and silences are always).
    operator_topics: Sequence[str] = ()
    # Consumer groups of the dispatchers: every group whose name starts with this.
    dispatch_group_prefix: str = "dispatch"

    def __post_init__(self) -> None:
        for p in (*self.workers, *self.edges, *self.dispatchers, *self.operators):
            if not p.startswith("User:") or len(p) == len("User:"):
                raise ValueError(f"a principal looks like User:<name>, got {p!r}")


def _acl(principal: str, op: ACLOperation, rtype: ResourceType, name: str, prefixed=False) -> ACL:
    pattern = ACLResourcePatternType.PREFIXED if prefixed else ACLResourcePatternType.LITERAL
    return ACL(
        principal=principal,
        host="*",
        operation=op,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(rtype, name, pattern),
    )


def _topic(principal: str, ops: Iterable[ACLOperation], *names: str) -> list[ACL]:
    return [_acl(principal, op, ResourceType.TOPIC, n) for n in names for op in ops]


def app_acls(settings: Settings, principals: Principals) -> list[ACL]:
    """The ACLs of the table above, for the topic names and app id of ``settings``.

    >>> acls = app_acls(Settings(), Principals(edges=["User:gate-7"]))
    >>> sorted((a.operation.name, a.resource_pattern.resource_name) for a in acls)
    [('DESCRIBE', 'crowd.readings'), ('WRITE', 'crowd.readings')]
    """
    s = settings
    routes = s.dispatch_topic_prefix  # every route's topic: a prefixed resource
    kept = (s.alerts_topic, s.acks_topic, s.audit_topic, s.cap_topic)
    out: list[ACL] = []
    for p in principals.workers:
        out += _topic(p, READ, s.readings_topic, s.acks_topic, s.silences_topic)
        out += _topic(p, (Op.WRITE, Op.READ, Op.DESCRIBE), s.ticks_topic)
        out += _topic(p, (Op.WRITE,), s.readings_topic, s.acks_topic, s.silences_topic)
        outputs = (s.zone_state_topic, s.alerts_topic, s.deadletter_topic, s.audit_topic)
        out += _topic(p, WRITE, *outputs, s.cap_topic)
        out += _prefixed(p, (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS), routes)
        # ensure_app_topics at start-up compares the record topics' retention with settings.
        out += _topic(p, (Op.DESCRIBE_CONFIGS,), *kept)
        out += [
            _acl(p, op, ResourceType.TOPIC, f"{s.app_id}-", prefixed=True)
            for op in (Op.CREATE, Op.READ, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)
        ]
        out += [_acl(p, op, ResourceType.GROUP, s.app_id) for op in READ]
    for p in principals.edges:
        out += _topic(p, WRITE, s.readings_topic)
    for p in principals.dispatchers:
        out += _topic(p, READ, s.alerts_topic, s.audit_topic)
        out += _prefixed(p, READ, routes)
        out += _topic(p, WRITE, s.acks_topic)
        out += [
            _acl(p, op, ResourceType.GROUP, principals.dispatch_group_prefix, prefixed=True)
            for op in READ
        ]
    for p in principals.operators:
        out += _topic(p, WRITE, s.acks_topic, s.silences_topic, *principals.operator_topics)
        shown = (s.alerts_topic, s.audit_topic, s.zone_state_topic, s.acks_topic)
        out += _topic(p, READ, *shown, s.silences_topic)
    return out


def _prefixed(principal: str, ops: Iterable[ACLOperation], prefix: str) -> list[ACL]:
    return [_acl(principal, op, ResourceType.TOPIC, prefix, prefixed=True) for op in ops]


class AclError(RuntimeError):
    """The broker refused to create some ACLs (the admin is no super user, or the cluster
    has no authoriser)."""


def apply_acls(admin_client_kwargs: Mapping[str, Any], acls: Sequence[ACL]) -> int:
    """Create ``acls`` as the admin (``client_kwargs`` of a super user); creating an ACL
    that exists is a no-op. Returns how many were sent; raises :class:`AclError` on refusal."""
    from kafka import KafkaAdminClient

    if not acls:
        return 0
    admin = KafkaAdminClient(**admin_client_kwargs, client_id="crowdsafe-acls")
    try:
        result = admin.create_acls(list(acls))
    finally:
        admin.close()
    if result["failed"]:
        # kafka-python lists the error classes of the refused ACLs
        errors = sorted({getattr(e, "__name__", type(e).__name__) for e in result["failed"]})
        raise AclError(f"{len(result['failed'])} of {len(acls)} ACLs refused: {', '.join(errors)}")
    return len(acls)


def describe(acls: Sequence[ACL]) -> list[str]:
    """One line per ACL, as ``kafka-acls --list`` would show it.

    >>> describe(app_acls(Settings(), Principals(dispatchers=["User:d"])))[-1]
    'User:d DESCRIBE GROUP dispatch*'
    """
    lines = []
    for a in acls:
        r = a.resource_pattern
        star = "*" if r.pattern_type == ACLResourcePatternType.PREFIXED else ""
        lines.append(
            f"{a.principal} {a.operation.name} {r.resource_type.name} {r.resource_name}{star}"
        )
    return lines
