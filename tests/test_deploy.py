"""Deployment files: the systemd unit's sandbox, the Docker image's health check and locked install, the declared
dependencies."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "triage-bot.service"


def unit_directives() -> dict[str, list[str]]:
    """[Service] directive -> its values in order (a directive may repeat)."""
    section, out = "", {}
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]":
            out.setdefault(key, []).append(value)
    return out


def test_the_systemd_unit_is_sandboxed_and_watched() -> None:
    d = unit_directives()
    hardening = {"ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true", "PrivateDevices": "true",
                 "NoNewPrivileges": "true", "UMask": "0077", "RestrictNamespaces": "true", "CapabilityBoundingSet": "",
                 "ProtectKernelTunables": "true", "LockPersonality": "true", "SystemCallArchitectures": "native"}
    for key, value in hardening.items():
        assert d.get(key) == [value], key
    assert set(d["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    start = d["ExecStart"][0].split()
    workdir = d["WorkingDirectory"][0]
    assert d["ReadWritePaths"] == [f"{workdir}/state"]  # state/ beside the code: the only writable place
    assert start[0].startswith(workdir) and start[-1] == f"{workdir}/config.yaml"
    assert d["Type"] == ["notify"] and d["WatchdogSec"] and d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["RestartPreventExitStatus"] == ["2 3"] and int(d["TimeoutStopSec"][0]) >= 60


def test_systemd_analyze_rates_the_unit_3_or_better() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True,
                            text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze gave no rating here: {result.stderr.strip()[:200]}")
    assert float(found.group(1)) <= 3.0, result.stdout


def test_the_image_installs_the_lock_with_hashes_and_checks_its_health() -> None:
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*--require-hashes .*-r requirements\.lock", docker)
    assert re.search(r'HEALTHCHECK .*CMD \["python", "run.py", "health"\]', docker)
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name = re.match(r"^([A-Za-z0-9_.-]+)", line)
        if name:
            assert name.group(1).lower() in pinned, f"{name.group(1)} is in requirements.txt but not locked"
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        if re.match(r"^[A-Za-z0-9_.-]+==", block):
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_every_package_the_code_imports_is_declared() -> None:
    declared = set()
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name = re.match(r"^([A-Za-z0-9_.-]+)", line)
        if name:
            declared.add(name.group(1).lower().replace("_", "-"))
    optional = {"bpe_openai"}  # the exact tokenizer for eval's projections; without it four characters a token
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("bot", "__future__") or top in optional:
                    continue
                dists = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if top == "google":  # a namespace: google.oauth2 and google.auth are google-auth
                    dists = {"google-auth"}
                if not dists & declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in requirements.txt: {sorted(missing)}"
