"""The Faust app takes the cluster layout from the settings (no broker needed)."""

from __future__ import annotations

from streams.config.settings import Settings
from streams.worker.app import faust_app


def test_faust_topics_get_the_apps_partitions_and_replication():
    # On a real cluster (README "Deployment") the tables' changelogs hold every zone's learned
    # state: one replica would lose it with one broker.
    app = faust_app(Settings(topic_partitions=6, replication_factor=3, app_id="t-layout"))
    assert app.conf.topic_partitions == 6
    assert app.conf.topic_replication_factor == 3
