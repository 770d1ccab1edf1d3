"""The interpreter exits cleanly while the module's runtime threads still have answers to hand
over: no thread enters the interpreter once it is shutting down (the `exit` module of the
extension). Each case runs a script in its own interpreter and asserts on its exit status.
"""

import subprocess
import sys
import textwrap
import urllib.request

from conftest import PASSWORD

#: The start of both scripts: the arguments, and garbage in a cycle left for the collection
#: the interpreter makes once it is finalizing, whose finalizer keeps the shutdown going for a
#: second with the GIL released.
SLOW_SHUTDOWN = """
    import asyncio, gc, sys, time
    import xapi_sdk

    url, password = sys.argv[1:]

    class SlowToFinalize:
        # bound now: the module's globals may be gone when this runs
        def __del__(self, sleep=time.sleep):
            sleep(1.0)

    gc.set_threshold(1_000_000_000)
    cycle = SlowToFinalize()
    cycle.itself = cycle
    del cycle
"""

#: The event loop's wake-up write takes half a second, with the GIL released, as a slow
#: `send()` would: the answer's hand-over is still under way when the script has finished and
#: the interpreter starts to shut down (which a finalizer makes last a second).
#: Before the exit hook, the runtime thread then asked for the GIL of a finalizing interpreter
#: and the process aborted (SIGABRT), every time.
SLOW_HAND_OVER = SLOW_SHUTDOWN + """

    class SlowWakeUpLoop(asyncio.SelectorEventLoop):
        def _write_to_self(self):
            time.sleep(0.5)
            super()._write_to_self()

    async def main():
        session = xapi_sdk.AsyncSession(url)
        await session.login_with_password("root", password, "1.0", "exit test")
        # The loop must not sleep in select() waiting for the wake-up byte: a ticking task
        # lets it find the answer's callback while the write is still sleeping.
        async def tick():
            while True:
                await asyncio.sleep(0.005)
        ticker = asyncio.get_running_loop().create_task(tick())
        vms = await session.vm.get_all()
        ticker.cancel()
        print(f"{len(vms)} VMs", flush=True)

    loop = SlowWakeUpLoop()
    loop.run_until_complete(main())
    loop.close()
"""

#: A call started and never awaited, whose answer arrives while the interpreter is being torn
#: down (a finalizer keeps it busy for a second): the answer is dropped.
ANSWER_DURING_SHUTDOWN = SLOW_SHUTDOWN + """
    import urllib.request

    async def main():
        session = xapi_sdk.AsyncSession(url)
        await session.login_with_password("root", password, "1.0", "exit test")
        fault = urllib.request.Request(f"{url}/_sim/fault?delay_ms=400", method="POST")
        urllib.request.urlopen(fault).read()
        # started now, never awaited: its answer arrives after the loop is gone
        global pending
        pending = session.vm.get_all_records()
        print("started", flush=True)

    asyncio.run(main())
"""


def run_script(tmp_path, source, url):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script), url, PASSWORD],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_answer_handed_over_as_the_script_ends_does_not_abort_the_exit(url, tmp_path):
    done = run_script(tmp_path, SLOW_HAND_OVER, url)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.endswith(" VMs\n")


def test_an_answer_arriving_while_the_interpreter_shuts_down_is_dropped(url, tmp_path):
    try:
        done = run_script(tmp_path, ANSWER_DURING_SHUTDOWN, url)
    finally:
        clear = urllib.request.Request(f"{url}/_sim/fault?clear", method="POST")
        urllib.request.urlopen(clear).read()
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout == "started\n"
