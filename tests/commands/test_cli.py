"""The command line: bad configuration gives one clear line and exit 2, never a traceback."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from streams.config.paths import bundled_site

ROOT = Path(__file__).resolve().parents[2]
SITE = bundled_site()


def crowdsafe(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=60,
    )  # fmt: skip


def test_a_bad_site_file_names_file_line_zone_and_field(tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text(SITE.read_text().replace("area_m2 = 1200", "area_m2 = 0"))
    out = crowdsafe("worker", CROWDSAFE_SITE=str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"crowdsafe worker: {bad}:")
    assert "zone 'underpass'" in out.stderr and "'area_m2'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_bad_setting_names_the_variable():
    out = crowdsafe("simulate", "--duration", "1", CROWDSAFE_TOPIC_PARTITIONS="many")
    assert out.returncode == 2
    assert "CROWDSAFE_TOPIC_PARTITIONS='many'" in out.stderr and "Traceback" not in out.stderr


def test_an_unreachable_broker_is_one_line_within_the_connect_timeout():
    for command in (["worker"], ["simulate", "--duration", "5", "--speed", "0"], ["dispatch"]):
        out = crowdsafe(
            *command, KAFKA_BOOTSTRAP="127.0.0.1:1", CROWDSAFE_KAFKA_CONNECT_TIMEOUT_S="2"
        )
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines == [lines[0]] and "Traceback" not in out.stderr, out.stderr
        assert lines[0].startswith(f"crowdsafe {command[0]}: Kafka at 127.0.0.1:1:")


def test_bad_kafka_security_settings_name_the_variable(tmp_path):
    out = crowdsafe("dispatch", KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="ops")
    assert out.returncode == 2
    assert "KAFKA_SASL_PASSWORD_FILE" in out.stderr and "Traceback" not in out.stderr


def test_help_says_what_crowdsafe_is_for_and_every_option_has_help():
    out = crowdsafe("--help")
    assert out.returncode == 0 and "crowd safety" in out.stdout
    assert "streams.commands" not in out.stdout
    version = crowdsafe("--version")
    assert version.returncode == 0 and version.stdout.startswith("crowdsafe ")
    from streams.cli import build_parser

    def lacking_help(parser, path: str):
        """Options and arguments without a help text, sub-commands' too (kafka acls, users add)."""
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, command in action.choices.items():
                    yield from lacking_help(command, f"{path} {name}")
            elif not action.help and action.dest != "help":
                yield f"{path} {action.option_strings or action.dest}"

    assert list(lacking_help(build_parser(), "crowdsafe")) == []


def test_a_mistyped_zone_names_the_zones_there_are():
    out = crowdsafe("simulate", "--zone", "entrance-eats")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "unknown zone 'entrance-eats'" in out.stderr and "entrance-east" in out.stderr
