"""deploy/: the manifests parse, and their ports, probes, env names and command lines match the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from bot.cli import main
from bot.config import Settings
from tests.conftest import ROOT
from tests.fakes import FAKE_MODEL

DEPLOY = ROOT / "deploy"
SERVE_KINDS = {"Service", "Deployment"}  # Knative Service (serving.knative.dev) and apps/v1 Deployment


def documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document under deploy/."""
    docs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload document, or None."""
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Deployment" or (kind == "Service" and doc["apiVersion"].startswith("serving.knative.dev")):
        return spec["template"]["spec"]
    return None


def containers() -> Iterator[tuple[Path, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(file, document, pod spec, container) for every qabot container."""
    for path, doc in documents():
        spec = pod_spec(doc)
        for c in (spec or {}).get("containers", []):
            yield path, doc, spec, c


def env_names_read_by_settings() -> set[str]:
    """The environment variable names Settings reads (one per field)."""
    return {Settings.variable(name) for name in Settings.model_fields}


def route_paths() -> set[str]:
    """The paths the HTTP app serves."""
    from bot.serve.app import create_app

    app = create_app(Settings(model_name=FAKE_MODEL))
    return {getattr(r, "path", "") for r in app.routes}


def test_manifests_parse_and_cover_knative_deployment_and_cronjob() -> None:
    kinds = {(Path(p).parent.name, d["kind"]) for p, d in documents()}
    assert ("knative", "Service") in kinds
    assert {("kubernetes", "Deployment"), ("kubernetes", "CronJob"), ("kubernetes", "Service"),
            ("kubernetes", "PersistentVolumeClaim")} <= kinds
    assert ("deploy", "Secret") in kinds


def test_command_lines_are_valid_qabot_commands() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    seen = set()
    for path, doc, _, c in containers():
        argv = [*c.get("command", []), *c.get("args", [])]
        assert argv[0] in scripts, f"{path}: {argv[0]} is not a console script"
        name, rest = argv[1], argv[2:]
        assert name in main.commands, f"{path}: no `qabot {name}` command"
        main.commands[name].make_context(name, list(rest))  # raises on an unknown option or bad value
        seen.add((doc["kind"], name))
    assert {("Service", "serve"), ("Deployment", "serve"), ("CronJob", "index")} <= seen


def test_env_names_are_ones_the_code_reads() -> None:
    known = env_names_read_by_settings() | {"HF_HUB_OFFLINE"}
    for path, _, _, c in containers():
        for e in c.get("env", []):
            assert e["name"] in known, f"{path}: {e['name']} is not read by bot/config.py"


def test_settings_from_the_manifest_env_point_into_the_mounted_volume() -> None:
    for path, doc, spec, c in containers():
        env = {e["name"]: e.get("value", "secret") for e in c.get("env", [])}
        settings = Settings.from_env(env)
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for folder in (settings.index_dir, settings.corpus_dir):
            assert any(str(folder).startswith(m.rstrip("/") + "/") for m in mounts), f"{path}: {folder} not mounted"
        claims = {v["name"]: v["persistentVolumeClaim"] for v in spec["volumes"]}
        for m in mounts.values():
            serving = doc["kind"] in SERVE_KINDS
            # Replicas never write the index: mounted read-only, claim read-only; the index job writes.
            assert m.get("readOnly", False) is serving, f"{path}: {m['name']} readOnly should be {serving}"
            assert claims[m["name"]].get("readOnly", False) is serving
            assert claims[m["name"]]["claimName"] == "qabot-data"


def test_ports_and_probes_match_the_server() -> None:
    paths = route_paths()
    assert {"/readyz", "/healthz"} <= paths
    for path, doc, _, c in containers():
        if doc["kind"] not in SERVE_KINDS:
            continue
        argv = c["args"]
        port = int(argv[argv.index("--port") + 1])
        assert argv[argv.index("--host") + 1] == "0.0.0.0"
        ports = {p["containerPort"]: p["name"] for p in c["ports"]}
        assert port in ports, f"{path}: serve listens on {port} but the container exposes {sorted(ports)}"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe"):
            probe_port = c[probe]["httpGet"].get("port")
            assert probe_port in (None, port, ports[port]), f"{path}: {probe} port {probe_port}"


def test_kubernetes_service_targets_the_container_port() -> None:
    docs = [d for p, d in documents() if p.parent.name == "kubernetes"]
    service = next(d for d in docs if d["kind"] == "Service")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    names = {p["name"] for c in pod_spec(deployment)["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_knative_scales_to_zero_with_bounded_scale_and_a_concurrency_target() -> None:
    ksvc = next(d for p, d in documents() if d["kind"] == "Service" and d["apiVersion"].startswith("serving.knative"))
    ann = ksvc["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "0"
    assert int(ann["autoscaling.knative.dev/max-scale"]) >= 1
    assert 1 <= int(ann["autoscaling.knative.dev/target"]) <= ksvc["spec"]["template"]["spec"]["containerConcurrency"]


def test_secrets_come_from_the_secret_and_its_keys_exist() -> None:
    secret = next(d for p, d in documents() if d["kind"] == "Secret")
    keys = set(secret["stringData"])
    assert all(not v for v in secret["stringData"].values()), "the example secret must not hold values"
    for path, doc, _, c in containers():
        env = {e["name"]: e for e in c.get("env", [])}
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "QABOT_ADMIN_TOKEN"):
            if doc["kind"] in SERVE_KINDS:
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys
            if name in env:
                assert "value" not in env[name], f"{path}: {name} must come from a Secret"


def test_cronjob_never_overlaps() -> None:
    cron = next(d for p, d in documents() if d["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("bad", [["serve", "--port", "notanumber"], ["serve", "--nope"]])
def test_the_command_check_itself_catches_mistakes(bad: list[str]) -> None:
    with pytest.raises(Exception):
        main.commands[bad[0]].make_context(bad[0], bad[1:])
