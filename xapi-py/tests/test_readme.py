"""The README's Python examples run as written against a fresh demo simulator: each ```python
block of the "For Python users" section that talks to `http://127.0.0.1:PORT` is run in its own
interpreter, with the simulator's port put in and `/tmp/repo` moved to a temporary directory.
"""

import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    """The runnable ```python blocks of the README's section for Python users."""
    text = README.read_text()
    start = text.index("## For Python users")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    return [block for block in blocks if "127.0.0.1:PORT" in block]


def test_the_section_has_the_examples_this_test_expects():
    blocks = python_blocks()
    assert len(blocks) >= 3, "the typed, the engines and the drop-in examples"
    assert any("xapi_sdk.compat" in block for block in blocks)
    assert any("backup.restore" in block for block in blocks)


@pytest.fixture()
def fresh_demo(start_sim):
    """A demo simulator of its own: the engines example creates a VM."""
    return start_sim("--scenario", "demo", "--clock-speed", "1000").urls["primary"]


@pytest.mark.parametrize("index", range(3))
def test_a_readme_example_runs_as_written(index, fresh_demo, tmp_path):
    blocks = python_blocks()
    source = blocks[index].replace("http://127.0.0.1:PORT", fresh_demo)
    source = source.replace('"/tmp/repo"', repr(str(tmp_path / "repo")))
    if index > 0 and "import xapi_sdk\n" not in source:
        # the engines example continues the typed one, whose import it uses
        source = "import xapi_sdk\n" + source
    done = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    if "backup.restore" in source:
        assert "restored as " in done.stdout
        assert re.search(r"^mail done \S+$", done.stdout, flags=re.M), done.stdout
    else:
        assert "VM_BAD_POWER_STATE" in done.stdout, done.stdout
