"""Fixtures that run the real `m365-sim` binary over HTTPS on a free loopback port.

The binary is $M365_SIM_BIN (the test script points it at the built binary), falling back to
target/debug/m365-sim. Readiness is the binary's single ready line, never a sleep.
"""

import json
import os
import re
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own `verify`, so MSAL's
# `verify=<sim CA file>` would be ignored on machines that set them. Each test trusts exactly the
# sim's CA instead.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)
READY = re.compile(r"^m365-sim listening on (https?://\S+) tenant=([0-9a-f-]{36})$")


def sim_binary() -> str:
    env = os.environ.get("M365_SIM_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "m365-sim")


@dataclass
class Sim:
    """A running simulator."""

    base_url: str
    tenant_id: str
    ca_file: str
    process: subprocess.Popen
    workdir: str
    _ssl: ssl.SSLContext = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl

    def control(self, method: str, path: str, body=None, raw: bytes = None, content_type=None):
        """Calls the /_sim control API; returns (status, parsed JSON or None)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type or "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl_context()) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text.strip().startswith("{") else text)

    def register_app(self, **app) -> str:
        status, body = self.control("POST", "/_sim/apps", app)
        assert status == 201, body
        return body["client_id"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sim(*args: str, seed: dict = None) -> Sim:
    """Starts the binary with extra CLI args (and an optional seed dict) and waits for readiness."""
    workdir = tempfile.mkdtemp(prefix="m365-sim-")
    ca_file = os.path.join(workdir, "ca.pem")
    cmd = [sim_binary(), "--listen", "127.0.0.1:0", "--ca-out", ca_file, *args]
    if seed is not None:
        seed_file = os.path.join(workdir, "seed.json")
        with open(seed_file, "w") as f:
            json.dump(seed, f)
        cmd += ["--seed", seed_file]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    m = READY.match(line)
    if not m:
        proc.kill()
        raise RuntimeError(f"m365-sim did not become ready; first line: {line!r}")
    return Sim(base_url=m.group(1), tenant_id=m.group(2), ca_file=ca_file, process=proc, workdir=workdir)


SEED = {
    "users": [
        {
            "id": "11111111-1111-1111-1111-111111111111",
            "userPrincipalName": "ann@contoso.example",
            "displayName": "Ann Archer",
            "mail": "ann@contoso.example",
            "password": "Passw0rd!",
        }
    ]
}


@pytest.fixture
def seed():
    """The seed with Ann, for tests that start their own simulator (a fixture, because two
    `conftest` modules are on the path when every crate's pytests run together)."""
    return SEED


@pytest.fixture(scope="session")
def sim():
    """One simulator for the session: a generated organisation of 2,500 users plus Ann."""
    s = start_sim("--users", "2500", seed=SEED)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def sim_factory():
    """Starts extra simulators with custom arguments; all are stopped at the end."""
    started = []

    def factory(*args, seed=None):
        s = start_sim(*args, seed=seed)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()
