"""Deployment files: cluster.yaml against Ray's own schema; Dockerfile and KubeRay
manifests agree with the pinned versions and name real job scripts and options."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "infra" / "k8s").glob("*.yaml"))


def _pinned_ray_version() -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith("ray=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError("constraints.txt pins no ray version")


def _package_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_installed_ray_is_the_pinned_one():
    assert ray.__version__ == _pinned_ray_version()


def test_cluster_yaml_validates_against_rays_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    assert any("constraints.txt" in c for c in config["setup_commands"])


def test_broken_cluster_yaml_is_caught_by_the_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_dockerfile_uses_the_pinned_ray_image():
    text = (ROOT / "infra" / "Dockerfile").read_text()
    assert re.search(rf"^ARG RAY_VERSION={re.escape(_pinned_ray_version())}$", text, re.M)
    assert "FROM rayproject/ray:${RAY_VERSION}" in text
    assert "-c constraints.txt" in text


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_agree_with_the_pins(path):
    for doc in yaml.safe_load_all(path.read_text()):
        for node in _walk(doc):
            if "rayVersion" in node:
                assert node["rayVersion"] == _pinned_ray_version()
            if "image" in node:
                assert node["image"].endswith(f":{_package_version()}-ray{_pinned_ray_version()}"), node["image"]


def _entrypoint_commands():
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            entrypoint = (doc or {}).get("spec", {}).get("entrypoint")
            if entrypoint:
                for command in entrypoint.split("&&"):
                    yield path.name, shlex.split(command)


@pytest.mark.parametrize("manifest, argv", list(_entrypoint_commands()), ids=lambda v: v if isinstance(v, str) else v[1])
def test_entrypoints_name_real_scripts_and_options(manifest, argv):
    assert argv[0] == "python" and argv[1].startswith("jobs/")
    script = ROOT / argv[1]
    assert script.is_file(), f"{manifest}: {argv[1]} does not exist"
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                               check=True, cwd=ROOT).stdout
    for option in (a.split("=", 1)[0] for a in argv[2:] if a.startswith("--")):
        assert option in help_text, f"{manifest}: {argv[1]} has no option {option}"


def test_secrets_are_referenced_not_inlined():
    for path in MANIFESTS:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if all(d.get("kind") == "Secret" for d in docs):
            continue
        for node in (n for d in docs for n in _walk(d)):
            assert not (str(node.get("name", "")).startswith("AWS_") and "value" in node), (path.name, node)
        assert "secretRef" in path.read_text(), path.name


def test_rayservice_runs_the_real_serve_app_with_valid_settings():
    import importlib

    from raydisc.serving.app import ServeSettings

    doc = yaml.safe_load((ROOT / "infra" / "k8s" / "rayservice.yaml").read_text())
    serve_config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    for application in serve_config["applications"]:
        module, attribute = application["import_path"].split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
        settings = ServeSettings(**application["args"])
        assert settings.bundle.startswith("s3://")
        assert settings.token_file, "a cluster endpoint must not run without a token"
