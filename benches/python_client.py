#!/usr/bin/env python3
"""Client-side speed of the Python clients on `VM.get_all_records` of 5,000 VMs.

One response is built once (every field of the `VM` class, filled by type, as XML-RPC with
`xmlrpc.client.dumps`) and replayed by a minimal loopback server running in another process,
so the server's time stays out of the ratio. The same call is then timed, best of `--repeat` runs
(interleaved: one run of each client per round),
through

- the official XenAPI.py (`xenapi` on PyPI),
- `xapi_sdk.compat` (the drop-in: the same dicts of strings),
- the typed API (`xapi_sdk.Session`, records as `VmRecord` objects, enums, `Ref`s, ints),

and the import time of `xapi_sdk` (bytecode cached) is measured in fresh interpreters.
Prints the raw figures, then `ratio NAME: X.XX` lines (larger is better for xapi_sdk).

The response is written as `xmlrpc.client.dumps` writes it (a newline between elements,
strings in `<string>`), or with `--wire xapi` as xapi itself writes its answers (no
whitespace between elements, strings as untyped text).

Usage: python_client.py [--vms N] [--repeat N] [--wire pretty|xapi]
"""

import argparse
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

SESSION = "OpaqueRef:00000000-0000-0000-0000-00000000beef"

SERVER = r'''
import http.server, sys
big = open(sys.argv[1], "rb").read()
login = open(sys.argv[2], "rb").read()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = big if b"VM.get_all_records" in body else login
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
'''


def first_code(code):
    """The first complete type code at the start of `code`."""
    head = code[0]
    if head in "eR":
        return code[: code.index(";") + 1]
    if head in "LO":
        return head + first_code(code[1:])
    if head == "M":
        key = first_code(code[1:])
        return "M" + key + first_code(code[1 + len(key) :])
    return head


def value_of(code, enums, rng, index):
    """A realistic value for a type code of `xapi_sdk.api` (see xapi-py's spec module), as
    xapi sends it over XML-RPC (int64 as text)."""
    head, rest = code[0], code[1:]
    if head == "s":
        return f"text {index} {rng.randrange(10**6)}"
    if head == "i":
        return str(rng.choice([0, 1, 2, 4, 8, 1 << 30, 4 << 30, 16 << 30]))
    if head == "f":
        return rng.random()
    if head == "b":
        return rng.random() < 0.5
    if head == "d":
        return xmlrpc.client.DateTime("20261207T06:00:00Z")
    if head == "r":
        return f"OpaqueRef:{rng.getrandbits(128):032x}"
    if head == "e":
        return rng.choice([member.value for member in enums[rest[: rest.index(";")]]])
    if head == "L":
        return [value_of(rest, enums, rng, index) for _ in range(rng.randrange(4))]
    if head == "M":
        key = first_code(rest)
        value = rest[len(key) :]
        return {
            str(value_of(key, enums, rng, index)): value_of(value, enums, rng, index)
            for _ in range(rng.randrange(4))
        }
    if head == "O":
        return value_of(rest, enums, rng, index)
    return {}


def as_xapi_writes_it(xml):
    """`xml` (from `xmlrpc.client.dumps`) as xapi writes its answers: no whitespace between
    elements, strings as untyped `<value>` text."""
    xml = re.sub(rb">\n<", b"><", xml)
    return re.sub(rb"<value><string>([^<]*)</string></value>", rb"<value>\1</value>", xml)


def build_response(vms, wire="pretty"):
    """The XML-RPC responses of `VM.get_all_records` with `vms` records and of a login;
    `wire="xapi"` writes them as xapi does (see `as_xapi_writes_it`)."""
    import xapi_sdk.api as api

    _record_class, fields = api._RECORDS["VM"]
    rng = random.Random(7)
    records = {}
    for index in range(vms):
        ref = f"OpaqueRef:{rng.getrandbits(128):032x}"
        records[ref] = {name: value_of(code, api._ENUMS, rng, index) for name, code in fields}
    big = xmlrpc.client.dumps(
        ({"Status": "Success", "Value": records},), methodresponse=True, allow_none=True
    ).encode()
    login = xmlrpc.client.dumps(
        ({"Status": "Success", "Value": SESSION},), methodresponse=True
    ).encode()
    if wire == "xapi":
        return as_xapi_writes_it(big), as_xapi_writes_it(login)
    return big, login


def best_of_interleaved(repeat, ops):
    """Best wall-clock time of `repeat` runs of each of `ops`, after one warm-up run each.

    The runs are interleaved (one of each per round, the order rotated every round), so that a
    machine whose speed drifts from second to second (a shared or virtual one) slows every
    client alike, instead of whichever happened to run during a slow spell."""
    for op in ops:
        op()
    best = [float("inf")] * len(ops)
    for round_ in range(repeat):
        for step in range(len(ops)):
            index = (round_ + step) % len(ops)
            start = time.perf_counter()
            ops[index]()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def import_time(module, runs=5):
    """Best time to import `module` in a fresh interpreter, bytecode cached, in seconds."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    return min(
        float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(runs)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--wire",
        choices=["pretty", "xapi"],
        default="pretty",
        help="pretty: as xmlrpc.client.dumps writes it (a newline between elements, <string> "
        "tags); xapi: as xapi writes it (no whitespace, untyped strings)",
    )
    args = parser.parse_args()

    import XenAPI

    import xapi_sdk
    import xapi_sdk.compat

    big, login = build_response(args.vms, args.wire)
    with tempfile.TemporaryDirectory(prefix="xapi-py-bench-") as tmp:
        big_path = pathlib.Path(tmp, "vm.xml")
        login_path = pathlib.Path(tmp, "login.xml")
        big_path.write_bytes(big)
        login_path.write_bytes(login)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(big_path), str(login_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
            print(
                f"response: {len(big) / 1e6:.1f} MB of XML-RPC ({args.wire}), {args.vms} VMs; "
                f"server {url}"
            )

            official = XenAPI.Session(url)
            official.xenapi.login_with_password("root", "x", "1.0", "bench")
            compat = xapi_sdk.compat.Session(url)
            compat.xenapi.login_with_password("root", "x", "1.0", "bench")
            typed = xapi_sdk.Session(url, protocol="xmlrpc")
            typed.login_with_password("root", "x", "1.0", "bench")

            def check(n):
                if n != args.vms:
                    raise SystemExit(f"expected {args.vms} records, got {n}")

            t_official, t_compat, t_typed = best_of_interleaved(
                args.repeat,
                [
                    lambda: check(len(official.xenapi.VM.get_all_records())),
                    lambda: check(len(compat.xenapi.VM.get_all_records())),
                    lambda: check(len(typed.vm.get_all_records())),
                ],
            )
        finally:
            server.terminate()
            server.wait()

    print(f"XenAPI.py        {t_official * 1000:9.1f} ms")
    print(f"xapi_sdk.compat  {t_compat * 1000:9.1f} ms")
    print(f"xapi_sdk typed   {t_typed * 1000:9.1f} ms")
    t_import = import_time("xapi_sdk")
    t_import_xenapi = import_time("XenAPI")
    print(f"import xapi_sdk  {t_import * 1000:9.1f} ms (bytecode cached)")
    print(f"import XenAPI    {t_import_xenapi * 1000:9.1f} ms (bytecode cached)")
    print(f"ratio compat_vs_xenapi_py: {t_official / t_compat:.2f}")
    print(f"ratio typed_vs_xenapi_py: {t_official / t_typed:.2f}")


if __name__ == "__main__":
    main()
