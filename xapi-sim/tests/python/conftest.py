"""Fixtures that build the `xapi-sim` binary, start it and hand its URLs to the tests.

The binary is taken from `XAPI_SIM_BIN` when set; otherwise it is built with
`cargo build -p xapi-sim` and taken from `$CARGO_TARGET_DIR/debug` (or `target/debug` under the
workspace root).

`XAPI_PY_CLIENT` names the module the tests import as `XenAPI`: unset (or `XenAPI`), the official
XenAPI.py; `xapi_sdk.compat`, the drop-in of xapi-py, which must then pass the same tests.
"""

import importlib
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

WORKSPACE = pathlib.Path(__file__).resolve().parents[3]
PASSWORD = "xapi-sim"

CLIENT_MODULE = os.environ.get("XAPI_PY_CLIENT", "XenAPI")
if CLIENT_MODULE != "XenAPI":
    # before any test module runs `import XenAPI`; an import error fails the run
    sys.modules["XenAPI"] = importlib.import_module(CLIENT_MODULE)


def pytest_report_header(config):
    return f"XenAPI client module: {CLIENT_MODULE} ({importlib.import_module('XenAPI').__file__})"


def _binary() -> pathlib.Path:
    explicit = os.environ.get("XAPI_SIM_BIN")
    if explicit:
        return pathlib.Path(explicit)
    subprocess.run(["cargo", "build", "-q", "-p", "xapi-sim"], cwd=WORKSPACE, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", WORKSPACE / "target"))
    if not target.is_absolute():
        target = WORKSPACE / target
    return target / "debug" / "xapi-sim"


class RunningSim:
    """A started `xapi-sim` process and what it printed."""

    def __init__(self, binary, *args):
        self.state = tempfile.TemporaryDirectory(prefix="xapi-sim-")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--state", self.state.name, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.urls = {}
        self.fingerprint = None
        self.lines = []
        expected_pools = 2 if "demo" in args else 1
        while len(self.urls) < expected_pools or ("--tls" in args and self.fingerprint is None):
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError(f"xapi-sim exited before listening: {err}")
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("xapi-sim listening on "):
                words = line[len("xapi-sim listening on "):].split()
                pool = "sim"
                for word in words[1:]:
                    if word.startswith("pool="):
                        pool = word[len("pool="):]
                self.urls[pool] = words[0]
            elif line.startswith("fingerprint sha256:"):
                self.fingerprint = line[len("fingerprint sha256:"):]

    @property
    def url(self):
        return next(iter(self.urls.values()))

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.state.cleanup()


@pytest.fixture(scope="session")
def sim_binary():
    return _binary()


@pytest.fixture(scope="session")
def demo(sim_binary):
    """The demo scenario: pools `primary` and `dr`, each on its own port."""
    sim = RunningSim(sim_binary, "--scenario", "demo", "--clock-speed", "1000")
    yield sim
    sim.stop()


@pytest.fixture()
def start_sim(sim_binary):
    """Start an extra simulator with the given arguments; stopped after the test."""
    started = []

    def start(*args):
        sim = RunningSim(sim_binary, *args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
