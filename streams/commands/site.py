"""``crowdsafe site synth``: write a synthetic site file of any size (scale tests, benchmarks)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("site", help="site files: write a synthetic one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    synth = actions.add_parser(
        "synth", help="a synthetic site: zones on a grid with cameras, gates and sensors"
    )
    synth.add_argument("--zones", type=int, required=True, help="how many zones (at least 1)")
    synth.add_argument("--seed", type=int, default=0, help="one seed, one site (default 0)")
    synth.add_argument("--out", type=Path, required=True, help="the site file to write")
    synth.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from streams.config.synthetic import write_synthetic_site

    if args.zones < 1:
        print("crowdsafe site synth: --zones must be at least 1")
        return 2
    site = write_synthetic_site(args.out, args.zones, args.seed)
    print(f"{args.out}: {len(site.zones)} zones, {len(site.sources)} sources (seed {args.seed})")
    return 0
