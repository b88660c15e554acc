"""Render deploy/nginx/nginx.conf for a run on loopback: the upstream's servers, the listen address,
temp files and pid under a prefix dir of the test's own. Used by the static check (`nginx -t`) and the
scale-out e2e test, so both exercise the file that ships."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
MIME_TYPES = Path("/etc/nginx/mime.types")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_nginx_conf(*, prefix: Path, listen: str, upstreams: list[str], worker_processes: int = 1) -> Path:
    """Write a runnable copy of the shipped config under `prefix`; return its path."""
    text = NGINX_CONF.read_text()
    server_lines = re.findall(r"^\s*server portal-\d+:\d+(.*);$", text, flags=re.M)
    if not server_lines:
        raise ValueError("deploy/nginx/nginx.conf has no 'server portal-N:PORT ...;' lines")
    options = server_lines[0]
    text = re.sub(r"^(\s*)server portal-\d+:\d+.*;\n", "", text, flags=re.M)
    servers = "".join(f"        server {address}{options};\n" for address in upstreams)
    text = text.replace("    upstream portal {\n", "    upstream portal {\n" + servers, 1)
    text, listens = re.subn(r"^(\s*)listen \S+;$", rf"\g<1>listen {listen};", text, count=1, flags=re.M)
    if not listens:
        raise ValueError("deploy/nginx/nginx.conf has no 'listen' line")
    text = text.replace("/tmp/", f"{prefix}/")
    text = text.replace("include mime.types;", f"include {MIME_TYPES};")
    text = re.sub(r"^worker_processes \S+;$", f"worker_processes {worker_processes};", text, flags=re.M)
    text = text.replace("access_log /dev/stdout llmos;", f"access_log {prefix}/access.log llmos;")
    text = text.replace("error_log /dev/stderr warn;", f"error_log {prefix}/error.log warn;")
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


def nginx_check(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    binary = nginx_binary()
    assert binary, "nginx is not installed"
    return subprocess.run(
        [binary, "-t", "-q", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True, check=False
    )
