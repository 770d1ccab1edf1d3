"""Fixtures for the xapi_sdk tests: the simulator fixtures of xapi-sim's Python suite, loaded
under another module name (that suite imports its own as `conftest`)."""

import importlib.util
import pathlib
import sys

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
