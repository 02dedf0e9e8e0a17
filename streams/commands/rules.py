"""``crowdsafe rules``: the Prometheus alert rules with runbook links for your documentation
site (the shipped file names runbooks by their path in the repository)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from streams.config.paths import checkout_root
from streams.config.settings import get_settings

_RUNBOOK = re.compile(r"^(?P<indent>\s+)runbook: (?P<path>\S+)\s*$")


def with_runbook_urls(text: str, base_url: str) -> str:
    """Add ``runbook_url: <base_url>/<path>`` after each ``runbook: <path>`` annotation.

    >>> print(with_runbook_urls("    runbook: docs/ops.md#x\\n", "https://wiki.example/cs/"))
        runbook: docs/ops.md#x
        runbook_url: https://wiki.example/cs/docs/ops.md#x
    <BLANKLINE>
    """
    base = base_url.rstrip("/")
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line)
        found = _RUNBOOK.match(line)
        if found:
            out.append(f"{found['indent']}runbook_url: {base}/{found['path']}\n")
    return "".join(out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rules",
        help="write the Prometheus alert rules with runbook links to your docs site",
        description="Write deploy/prometheus/alerts.yml with a runbook_url annotation on every "
        "rule: --runbook-base-url followed by the runbook's path in this repository (e.g. "
        "https://git.example.org/crowdsafe/-/blob/main).",
    )
    p.add_argument(
        "--runbook-base-url",
        metavar="URL",
        help="where this repository's docs/ are served (http or https; default: the setting "
        "CROWDSAFE_RUNBOOK_BASE_URL)",
    )
    p.add_argument(
        "--rules",
        type=Path,
        help="the rules file to start from (default: deploy/prometheus/alerts.yml)",
    )
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.runbook_base_url is None:
        args.runbook_base_url = get_settings().runbook_base_url
    if args.runbook_base_url is None:
        print("rules: no runbook base URL: pass --runbook-base-url URL or set "
              "CROWDSAFE_RUNBOOK_BASE_URL", file=sys.stderr)  # fmt: skip
        return 2
    if not re.match(r"^https?://\S+$", args.runbook_base_url):
        print(f"rules: --runbook-base-url must be an http(s) URL, got {args.runbook_base_url!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    source = args.rules
    if source is None:
        root = checkout_root()
        source = root / "deploy" / "prometheus" / "alerts.yml" if root else None
    if source is None or not source.is_file():
        print(f"rules: no rules file at {source} (pass --rules FILE)", file=sys.stderr)
        return 2
    text = with_runbook_urls(source.read_text(), args.runbook_base_url)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"rules: written to {args.out}", file=sys.stderr)
    return 0
