"""``crowdsafe dispatch``: a console that follows one dispatch route (``crowd.dispatch.<route>``)
and acknowledges or resolves its incidents from the terminal.

Each console is its own consumer group (``dispatch-<route>-<name>-<host>``; ``--group`` for
load-sharing bridges) and commits offsets after handling, so a restart neither loses nor repeats
a transition. A new group first reads the route's history to its current end and shows only the
incidents open now, then follows live. Commands typed (or piped) on stdin are read by a thread
and handled between polls: consuming never waits for the keyboard. What is shown and kept lives
in :mod:`streams.dispatch.console` (pure, tested without Kafka).
"""

from __future__ import annotations

import argparse
import getpass
import os
import queue
import re
import socket
import sys
import threading
import time

SEVERITIES = ("warning", "critical")
HISTORY_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dispatch",
        help="follow a dispatch route's incidents and acknowledge or resolve them",
        description="Follows crowd.dispatch.<route>: a new console first shows the incidents "
        "open now, then each transition as it happens (two lines of 80 columns, times in the "
        "site's time zone). Type `help` for the commands (ack N, resolve N, show N, list).",
    )
    p.add_argument(
        "--route",
        help="the route to follow (the site file's [[routes]], e.g. police); without it, every "
        "incident transition on crowd.alerts",
    )
    p.add_argument(
        "--as",
        dest="who",
        metavar="NAME",
        help="who you are: signs acknowledgements and resolutions (required to act) and names "
        "this console's consumer group",
    )
    p.add_argument(
        "--zone",
        action="append",
        default=[],
        help="only this zone (id or name; repeat for several)",
    )
    p.add_argument(
        "--severity",
        choices=SEVERITIES,
        help="only this severity and above (critical: critical only)",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        help="only incidents with a member alert of this kind (density, forecast, anomaly, "
        "source-offline, ...; repeat for several)",
    )
    p.add_argument(
        "--group",
        help="consumer group (default: dispatch-<route>-<name>-<host>, one per console; share "
        "one only between load-sharing bridges)",
    )
    p.add_argument("--json", action="store_true", help="one JSON record per line")
    p.add_argument(
        "--from",
        dest="start",
        choices=["open", "latest", "earliest"],
        default="open",
        help="where a new group starts: the incidents open now (default), only what happens "
        "from now on, or every record the topic holds",
    )
    p.add_argument("--max", type=int, help="stop after this many transitions shown")
    p.add_argument(
        "--idle-timeout", type=float, help="stop after this many seconds without a transition"
    )
    p.set_defaults(func=run)


def default_group(route: str | None, who: str | None) -> str:
    """``dispatch-<route>-<name>-<host>``: one group per console (ACLs allow ``dispatch*``)."""
    try:
        user = who or getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    raw = f"dispatch-{route or 'alerts'}-{user}-{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)[:200]


def _stdin_lines(out: queue.Queue) -> None:
    """Lines from fd 0 into ``out`` (None at end of input). Reads the descriptor, not
    ``sys.stdin``, so that this daemon thread holds no lock the interpreter needs at exit."""
    buf = b""
    try:
        while chunk := os.read(0, 4096):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                out.put(line.decode(errors="replace"))
    except OSError:
        pass
    if buf.strip():
        out.put(buf.decode(errors="replace"))
    out.put(None)


class _Session:
    """One running console: its state, its output and its actions."""

    def __init__(self, args: argparse.Namespace, settings, site) -> None:
        from zoneinfo import ZoneInfo

        from streams.dispatch.console import Console, Filters

        self.args = args
        self.settings = settings
        self.tz_name = site.site.timezone
        self.console = Console(
            tz=ZoneInfo(self.tz_name),
            filters=Filters(
                zones=frozenset(args.zone), severity=args.severity, kinds=frozenset(args.kind)
            ),
        )
        self.topic = settings.dispatch_topic(args.route) if args.route else settings.alerts_topic
        self.group = args.group or default_group(args.route, args.who)
        self.handled = 0
        self._producer = None

    # --- output ---------------------------------------------------------------------------

    def show(self, rec, raw: bytes | None, now_ms: int | None = None) -> None:
        if self.args.json:
            text = raw.decode() if raw is not None else _json(rec)
        else:
            text = self.console.line(rec, now_ms)
        print(text, flush=True)
        self.handled += 1

    def say(self, text: str) -> None:
        """A message to the person (stderr when stdout carries JSON records)."""
        print(text, file=sys.stderr if self.args.json else sys.stdout, flush=True)

    # --- commands -------------------------------------------------------------------------

    def command(self, line: str) -> None:
        from streams.dispatch.console import HELP, CommandError, format_details, parse_command

        try:
            cmd = parse_command(line)
        except CommandError as exc:
            self.say(f"? {exc}")
            return
        if cmd is None:
            return
        if cmd.verb == "help":
            self.say(HELP)
            return
        if cmd.verb == "list":
            now = _now_ms()
            found = self.console.open()
            self.say(f"-- {len(found)} open incident(s) --")
            for rec in found:
                self.say(self.console.line(rec, now))
            return
        rec = self.console.lookup(cmd.ref or "")
        if rec is None:
            self.say(f"? no incident {cmd.ref} in this console (list shows them)")
            return
        handle = self.console.handle(rec.incident_id)
        if cmd.verb == "show":
            self.say(format_details(rec, handle, self.console.tz, _now_ms()))
            return
        self.act(cmd.verb, rec, handle, cmd.note)

    def act(self, verb: str, rec, handle: int, note: str | None) -> None:
        import msgspec
        from kafka.errors import KafkaError

        from streams.dispatch import clients
        from streams.dispatch.console import zone_of
        from streams.schema.incident import Ack

        if not self.args.who:
            self.say(f"? {verb} needs your name: restart with --as NAME")
            return
        ack = Ack(
            incident_id=rec.incident_id,
            by=self.args.who,
            ts=_now_ms(),
            action="ack" if verb == "ack" else "resolve",
            note=note,
        )
        try:
            if self._producer is None:
                self._producer = clients.producer(self.settings)
            md = clients.send(
                self._producer,
                self.settings.acks_topic,
                zone_of(rec.incident_id),
                msgspec.json.encode(ack),
            )
        except (KafkaError, ValueError) as exc:
            self.say(f"! #{handle} {verb} NOT sent: {type(exc).__name__}: {exc}"[:300])
            return
        done = "acknowledgement" if verb == "ack" else "resolution"
        self.say(
            f"#{handle} {done} sent as {self.args.who} "
            f"({self.settings.acks_topic} {md.partition}:{md.offset}): {rec.incident_id}"
        )
        if verb == "resolve" and rec.state != "cleared":
            self.say(f"  note: #{handle} is {rec.state}, not cleared: the worker refuses it")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _json(rec) -> str:
    import msgspec

    return msgspec.json.encode(rec).decode()


def run(args: argparse.Namespace) -> int:
    from streams.config.settings import get_settings
    from streams.config.site import load_site

    settings = get_settings()
    site = load_site(settings.site)
    routes = [r.id for r in site.routes]
    if args.route and args.route not in routes:
        print(
            f"crowdsafe dispatch: unknown route '{args.route}' (routes: {routes})", file=sys.stderr
        )
        return 2
    ids = {z.id: z.id for z in site.zones} | {z.name: z.id for z in site.zones}
    unknown = [z for z in args.zone if z not in ids]
    if unknown:
        known = sorted(z.id for z in site.zones)
        print(f"crowdsafe dispatch: unknown zone {unknown} (zones: {known})", file=sys.stderr)
        return 2
    args.zone = [ids[z] for z in args.zone]  # a zone's name stands for its id
    if args.who is not None and not args.who.strip():
        print("crowdsafe dispatch: --as needs a name", file=sys.stderr)
        return 2
    session = _Session(args, settings, site)
    try:
        _catch_up(session)
        if not (args.max and session.handled >= args.max):
            _follow(session)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
    print(f"dispatch: {session.handled} transition(s) handled", file=sys.stderr)
    return 0


def _catch_up(s: _Session) -> None:
    """Read what the topic holds before this console's start (a new group: all of it; a known
    group: up to its committed offsets), silently, into the console's state; a new group then
    shows the incidents open now and commits the end, so it follows live from there."""
    from streams.dispatch import clients
    from streams.dispatch.console import Unreadable, decode, summary_header

    c = clients.consumer(s.settings, s.group)
    try:
        try:
            tps = clients.partitions(c, s.topic)
        except clients.TopicMissing as exc:
            raise SystemExit(f"crowdsafe dispatch: {exc}") from None
        done = clients.committed(c, tps)
        new = all(o is None for o in done.values())
        end = c.end_offsets(tps)
        if new:
            stop = {tp: 0 for tp in tps} if s.args.start == "earliest" else end
        else:
            stop = {tp: o or 0 for tp, o in done.items()}
        records, bad, raw = [], [], {}

        def take(r) -> None:
            try:
                rec = decode(r.value)
            except Unreadable as exc:
                bad.append(f"{r.partition}:{r.offset}: {exc}")
            else:
                records.append(rec)
                raw[(rec.incident_id, rec.seq)] = r.value  # --json prints records as they are

        if not clients.read_until(c, stop, take, HISTORY_TIMEOUT_S):
            raise SystemExit(f"crowdsafe dispatch: {s.topic} not read in {HISTORY_TIMEOUT_S:g}s")
        for rec in records:  # partition order; the newest record per incident wins by seq
            s.console.accept(rec)
        if bad:
            print(f"dispatch: skipped {len(bad)} unreadable record(s), e.g. {bad[0]}"[:300],
                  file=sys.stderr)  # fmt: skip
        if new and s.args.start == "open":
            now = _now_ms()
            found = s.console.open()
            if not s.args.json:
                what = f"route {s.args.route}" if s.args.route else s.topic
                s.say(summary_header(len(found), s.console.tz, s.tz_name, now, what))
            for rec in found:
                s.show(rec, raw.get((rec.incident_id, rec.seq)), now)
        if new and s.args.start != "earliest":
            clients.commit(c, end)
        print(f"dispatch: following {s.topic} as group {s.group}", file=sys.stderr)
        if not s.args.json:  # "type help" only where someone can type (not the demo's feed)
            typing = sys.stdin is not None and sys.stdin.isatty()
            s.say("-- live; type help for commands --" if typing else "-- live --")
    finally:
        c.close()


def _follow(s: _Session) -> None:
    from kafka.structs import OffsetAndMetadata

    from streams.dispatch import clients
    from streams.dispatch.console import Unreadable, decode

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_stdin_lines, args=(lines,), daemon=True, name="stdin").start()
    c = clients.consumer(s.settings, s.group)
    c.subscribe([s.topic])
    # From the group's first assignment; before it, from the start: a console whose group never
    # forms (a coordinator out of reach) still ends after --idle-timeout instead of hanging.
    started = time.monotonic()
    idle_since: float | None = None
    try:
        while True:
            while True:  # commands typed meanwhile
                try:
                    line = lines.get_nowait()
                except queue.Empty:
                    break
                if line is not None:
                    s.command(line)
                    idle_since = time.monotonic() if idle_since is not None else None
            left = s.args.max - s.handled if s.args.max else None
            batch = c.poll(timeout_ms=200, max_records=left)
            if idle_since is None and c.assignment():
                idle_since = time.monotonic()
            handled = {}
            for tp, records in batch.items():
                for r in records:
                    try:
                        rec = decode(r.value)
                    except Unreadable as exc:
                        print(f"dispatch: unreadable record at {tp.partition}:{r.offset}: {exc}"
                              [:300], file=sys.stderr)  # fmt: skip
                    else:
                        if s.console.accept(rec):
                            s.show(rec, r.value)
                    handled[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
            if handled:
                c.commit(handled)  # after handling: a crash before this repeats, never loses
                idle_since = time.monotonic()
            if s.args.max and s.handled >= s.args.max:
                return
            timeout = s.args.idle_timeout
            since = idle_since if idle_since is not None else started
            if timeout and time.monotonic() - since > max(timeout, 60 if idle_since is None else 0):
                return
    finally:
        c.close()
