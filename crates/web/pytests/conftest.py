"""Fixtures that run the real `pbx365 serve` on a seeded SQLite database on a free loopback port.

The binary is $PBX365_BIN (the test script points it at the built binary), falling back to
target/debug/pbx365. Readiness is the server's "serving on" line, never a sleep. The API token
used as Bearer auth is read from `pbx365 admin token create` and never printed.
"""

import json
import os
import re
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVING = re.compile(r"^pbx365 is serving on (https?://\S+) ")
# A 1x1 PNG: the photo the seeded synced extension has (Microsoft also serves PNG photos).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def pbx365_binary() -> str:
    env = os.environ.get("PBX365_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug" / "pbx365")


@dataclass
class Server:
    """A running `pbx365 serve`."""

    base_url: str
    token: str = field(repr=False)
    config: Path = None
    log: Path = None
    process: subprocess.Popen = field(default=None, repr=False)

    def call(self, method: str, path: str, body=None):
        """Calls the API with the token; returns (status, parsed JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text.strip().startswith("{") else text)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _seed(server: Server, db_file: Path):
    """A few extensions (one of them synced from Microsoft 365, with a photo), groups with
    members, phonebook entries and a manual profile."""

    def ok(status_body, *expected):
        status, body = status_body
        assert status in expected, (status, body)
        return body

    for number, first, last in [
        ("100", "Anna", "Berg"),
        ("101", "Bernd", "Clausen"),
        ("102", "Carla", "Diaz"),
        ("200", "Synced", "User"),
    ]:
        ok(
            server.call(
                "POST",
                "/api/v1/extensions",
                {
                    "number": number,
                    "first_name": first,
                    "last_name": last,
                    "email": f"{first.lower()}@contoso.example",
                    "mobile": "+49 170 1234567",
                    "department": "Sales",
                },
            ),
            201,
        )
    ok(server.call("POST", "/api/v1/groups", {"name": "sales", "description": "Sales team"}), 201)
    ok(server.call("POST", "/api/v1/groups", {"name": "support"}), 201)
    ok(server.call("PUT", "/api/v1/groups/sales/members/100"), 204)
    ok(server.call("PUT", "/api/v1/groups/sales/members/101"), 204)
    ok(server.call("PUT", "/api/v1/extensions/101/profile", {"profile": "dnd"}), 200)
    ok(
        server.call(
            "POST",
            "/api/v1/phonebook/company",
            {
                "display_name": "Contoso Reception",
                "company": "Contoso",
                "emails": ["reception@contoso.example"],
                "numbers": [{"kind": "business", "number": "+49 30 1234567"}],
            },
        ),
        201,
    )
    ok(
        server.call(
            "POST",
            "/api/v1/extensions/100/phonebook",
            {"first_name": "Dora", "last_name": "Engel", "numbers": [{"kind": "mobile", "number": "0171 7654321"}]},
        ),
        201,
    )
    # What only the user sync writes (a synced extension and its photo) goes straight into the
    # database: the API has no way to make one, and this suite has no Microsoft 365 tenant.
    with sqlite3.connect(db_file, timeout=30) as db:
        db.execute(
            "UPDATE extensions SET source = 'm365', m365_id = ?, photo_etag = 'W/\"1\"', "
            "photo_content_type = 'image/png' WHERE number = '200'",
            ("0f6a5a5e-8c1d-4a4b-9e8f-3c2d1b0a9f8e",),
        )
        db.execute("INSERT INTO extension_photos (number, bytes) VALUES ('200', ?)", (PNG,))


def launch(config: Path, token_name: str, on_line=None) -> Server:
    """Creates an API token with `pbx365 admin token create`, then starts `pbx365 serve` on
    `config` and waits for its "serving on" line; `on_line` sees the lines printed before it."""
    binary = pbx365_binary()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBX365_")}
    env["RUST_LOG"] = "warn"
    token = subprocess.run(
        [binary, "--config", str(config), "admin", "token", "create", "--name", token_name],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    assert token and "\n" not in token
    log = config.parent / "serve.log"
    process = subprocess.Popen(
        [binary, "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    base_url = None
    for line in process.stdout:
        m = SERVING.match(line.strip())
        if m:
            base_url = m.group(1)
            break
        if on_line:
            on_line(line.strip())
    if base_url is None:
        process.wait()
        pytest.fail(f"pbx365 serve did not start:\n{log.read_text()}")
    return Server(base_url=base_url, token=token, config=config, log=log, process=process)


@pytest.fixture(scope="session")
def pbx365_server():
    binary = pbx365_binary()
    if not Path(binary).exists():
        pytest.skip(f"pbx365 binary not built at {binary} (run scripts/test or set PBX365_BIN)")
    workdir = Path(tempfile.mkdtemp(prefix="pbx365-contract-"))
    data_dir = workdir / "data"
    db_file = data_dir / "pbx365.db"
    config = workdir / "pbx365.toml"
    config.write_text(
        f'listen = "127.0.0.1:0"\n'
        f"data_dir = {json.dumps(str(data_dir))}\n"
    )
    server = launch(config, "schemathesis")
    try:
        _seed(server, db_file)
        yield server
    finally:
        server.stop()
