"""deploy/k8s: every manifest the kustomization lists validates offline against the Kubernetes
schemas (kubernetes-validate), and the workloads fit crowdsafe: real commands, real settings,
the site file, the secrets they mount, probes and scrape annotations on the real ports."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import kubernetes_validate
import pytest
import yaml

from streams.config.paths import bundled_site
from streams.config.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
VERSION = "1.37.0"  # the schemas kubernetes-validate bundles
WORKLOADS = ("StatefulSet", "Deployment")


def resources() -> list[dict]:
    docs = []
    for name in KUSTOMIZATION["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def generated() -> list[dict]:
    """The ConfigMaps of the configMapGenerator, as kustomize makes them (less the hash)."""
    out = []
    for gen in KUSTOMIZATION["configMapGenerator"]:
        data = {Path(f).name: (K8S / f).read_text() for f in gen["files"]}
        meta = {"name": gen["name"], "namespace": KUSTOMIZATION["namespace"]}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return out


def find(kind: str, name: str) -> dict:
    (doc,) = [d for d in resources() + generated() if (d["kind"], d["metadata"]["name"]) == (kind, name)]  # fmt: skip
    return doc


def pods() -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], d["spec"]["template"]) for d in resources() if d["kind"] in WORKLOADS]  # fmt: skip


def test_the_kustomization_lists_every_manifest_and_nothing_else():
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(KUSTOMIZATION["resources"]) == files
    assert {d["metadata"].get("namespace") for d in resources() if d["kind"] != "Namespace"} == {
        KUSTOMIZATION["namespace"]
    }


@pytest.mark.parametrize("doc", resources() + generated(), ids=lambda d: d["metadata"]["name"])
def test_manifest_validates_against_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_site_configmap_is_the_bundled_site_file():
    (site,) = [g for g in generated() if g["metadata"]["name"] == "crowdsafe-site"]
    assert site["data"] == {bundled_site().name: bundled_site().read_text()}, (
        "deploy/k8s/site/ differs from the bundled site file: copy it again"
    )


@pytest.mark.parametrize("name,pod", pods(), ids=[n for n, _ in pods()])
def test_workload_runs_crowdsafe_with_its_settings_site_and_secrets(
    name, pod, crowdsafe_parser, setting_names
):
    spec = pod["spec"]
    (container,) = spec["containers"]
    crowdsafe_parser.parse_args(container["args"])
    (ref,) = container["envFrom"]
    env = dict(find("ConfigMap", ref["configMapRef"]["name"])["data"])
    env |= {e["name"]: e.get("value") for e in container.get("env", [])}
    assert set(env) <= setting_names
    # Every file a setting names is in a volume mounted there: the site and the Kafka secrets.
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for var in ("CROWDSAFE_SITE", "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE"):
        path = PurePosixPath(env[var])
        volume = volumes[mounted[str(path.parent)]]
        if "configMap" in volume:
            keys = find("ConfigMap", volume["configMap"]["name"])["data"]
        else:
            items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
            keys = find("Secret", volume["secret"]["secretName"])["stringData"]
            assert items[path.name] in keys, var
            continue
        assert path.name in keys, var
    # Non-root, and a budget the scheduler can plan with.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def scraped(pod: dict) -> tuple[int, str]:
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    (container,) = pod["spec"]["containers"]
    (port,) = container["ports"]
    assert notes["prometheus.io/port"] == str(port["containerPort"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    return port["containerPort"], notes["prometheus.io/path"]


def test_workers_share_the_partitions_and_keep_their_state():
    worker = find("StatefulSet", "crowdsafe-worker")
    pod = worker["spec"]["template"]
    settings = Settings()
    assert scraped(pod) == (settings.web_port, "/metrics")
    # More than one, and no more than partitions: a worker beyond them would hold nothing.
    partitions = int(find("ConfigMap", "crowdsafe-env")["data"]["CROWDSAFE_TOPIC_PARTITIONS"])
    assert 2 <= worker["spec"]["replicas"] <= partitions
    # Its RocksDB state on its own volume, where CROWDSAFE_STATE_DIR says.
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    state_dir = find("ConfigMap", "crowdsafe-env")["data"]["CROWDSAFE_STATE_DIR"]
    assert mounts[claim["metadata"]["name"]] == state_dir
    # Kubernetes kills later than the worker's own stop clock gives up.
    assert pod["spec"]["terminationGracePeriodSeconds"] > settings.stop_timeout_s
    service = find("Service", worker["spec"]["serviceName"])
    assert service["spec"]["selector"] == pod["metadata"]["labels"]


def test_the_centre_is_scraped_served_and_gets_its_token():
    centre = find("Deployment", "crowdsafe-centre")
    pod = centre["spec"]["template"]
    assert scraped(pod) == (Settings().centre_port, "/metrics")
    service = find("Service", "crowdsafe-centre")
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    ref = env["CROWDSAFE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] in find("Secret", ref["name"])["stringData"]


def test_secrets_are_marked_placeholders():
    secrets = [d for d in resources() if d["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        for key, value in secret["stringData"].items():
            assert "REPLACE-ME" in value, f"{secret['metadata']['name']}/{key}"
