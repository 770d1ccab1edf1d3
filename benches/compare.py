#!/usr/bin/env python3
"""Side-by-side comparison of xapi-rs with the references users have today.

Runs the release-built `xapi-bench-compare` binary, which writes the inputs into a temporary
directory and reports its own timings, then times the references on the very same files:

- `xmlrpc.client.loads` (what the official XenAPI.py uses) on the XML-RPC responses of
  `VM.get_all_records`, `VDI.get_all_records` and `VBD.get_all_records` (5,000 records each),
  against xapi-rs decoding them into typed records;
- `json.loads` on the JSON-RPC responses, against xapi-rs decoding them into typed records;
  both sides free what they decoded inside the timed run;
- (figures only) parsing the DB XML dump of a 10,000-VM pool, with its peak RSS, and reading a
  redo log with 100,000 deltas;
- `tar -xO <file> > /dev/null` on an XVA, the floor for reading it, against xapi-rs reading
  it with every chunk's checksum verified (xxhash and sha1 variants);
- `curl -o` of xapi-sim's `/export` of a VM with a 4 GiB disk (1 GiB of data, the rest sparse)
  against `xapi-bench-backup` backing the same VM up into a local repository (every chunk
  verified and hashed, compression off; figures with zstd and with encryption, peak RSS); also
  against `curl -o` followed by an fsync of the file and its directory, since the backup makes
  its chunks durable (`backup_vs_curl_durable`), and
  the dedup of the demo pool (with `xapi-bench-backup` beside `--bin`; `--disk-gib`,
  `--data-mib`, `--no-backup`).

Prints one line per ratio, `ratio NAME: X.XX`, larger is better for xapi-rs, preceded by the
raw figures, plus the typed decodes again with mimalloc as the global allocator when the
`xapi-decode-mimalloc` binary sits beside `--bin` (extra `..._mimalloc` ratio lines). Usage: compare.py --bin PATH [--repeat N] [--xva-mib N] [--vms N] [--keep DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xmlrpc.client


def best_of(repeat, op):
    """Best wall-clock time of `repeat` runs of `op`, after one warm-up run."""
    op()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        op()
        best = min(best, time.perf_counter() - start)
    return best


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


CLASSES = ("vm", "vdi", "vbd")


def python_xmlrpc(path, repeat, vms):
    data = read_bytes(path).decode("utf-8")

    def decode():
        (response,), _method = xmlrpc.client.loads(data, use_builtin_types=False)
        if response["Status"] != "Success" or len(response["Value"]) != vms:
            raise SystemExit(f"xmlrpc.client decoded something unexpected from {path}")

    return best_of(repeat, decode)


def python_json(path, repeat, vms):
    data = read_bytes(path)

    def decode():
        response = json.loads(data)
        if len(response["result"]) != vms:
            raise SystemExit(f"json.loads decoded something unexpected from {path}")

    return best_of(repeat, decode)


def tar_floor(path, repeat):
    def extract():
        with open(os.devnull, "wb") as devnull:
            subprocess.run(["tar", "-xOf", path], stdout=devnull, check=True)

    return best_of(repeat, extract)


def backup_vs_curl(backup_bin, workdir, args, show):
    """Runs `xapi-bench-backup bench`: curl -o against backups of the same export."""
    run = subprocess.run(
        [backup_bin, "bench", os.path.join(workdir, "backup"), "--repeat", str(args.repeat),
         "--disk-gib", str(args.disk_gib), "--data-mib", str(args.data_mib)],
        check=True, stdout=subprocess.PIPE,
    )
    measured = {}
    for line in run.stdout.decode().splitlines():
        if line.startswith("{"):
            m = json.loads(line)
            measured[m["name"]] = m
    curl = measured["curl_export"]
    show(f"curl -o /export ({curl['disk_gib']} GiB disk, {curl['data_mib']} MiB data)",
         curl["seconds"], curl["bytes"])
    durable = measured["curl_export_durable"]
    show("curl -o /export, then fsync", durable["seconds"], durable["bytes"])
    for name in ("backup_none", "backup_zstd", "backup_encrypted"):
        m = measured[name]
        show(f"xapi-rs {name}", m["seconds"], m["bytes"])
        print(f"{'  peak RSS':<40} {m['peak_rss_bytes'] / 2**20:10.1f} MiB, "
              f"stored {m['stored_bytes'] / 2**20:.1f} MiB")
    dedup = measured.get("dedup_demo")
    if dedup:
        # the ratio is of what the repository holds; concurrent backups of clones may both
        # upload a chunk neither had published yet, so the chunks written can be more
        print(f"{'dedup of the demo pool':<40} {dedup['vms']} VMs, {dedup['bytes_read'] / 2**20:.1f} MiB"
              f" of data, {dedup['stored_bytes'] / 2**20:.1f} MiB stored, ratio"
              f" {dedup['bytes_read'] / max(dedup['stored_bytes'], 1):.2f}"
              f" ({dedup['new_bytes'] / 2**20:.1f} MiB of chunks written), {dedup['seconds']:.2f} s")
    backup = measured["backup_none"]["seconds"]
    # backup_vs_curl is the figure; the durable one compares like with like (the
    # backup makes every chunk durable before its manifest, curl -o leaves the file in the
    # page cache)
    return [("backup_vs_curl", curl["seconds"] / backup),
            ("backup_vs_curl_durable", durable["seconds"] / backup)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="release-built xapi-bench-compare")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--xva-mib", type=int, default=256)
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--db-vms", type=int, default=10000)
    parser.add_argument("--deltas", type=int, default=100000)
    parser.add_argument("--keep", help="write the inputs here and keep them")
    parser.add_argument("--disk-gib", type=int, default=4)
    parser.add_argument("--data-mib", type=int, default=1024)
    parser.add_argument("--no-backup", action="store_true", help="skip the backup benchmark")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xapi-bench-") as scratch:
        workdir = args.keep or scratch
        rust = subprocess.run(
            [args.bin, workdir, "--repeat", str(args.repeat), "--xva-mib", str(args.xva_mib),
             "--vms", str(args.vms), "--db-vms", str(args.db_vms), "--deltas", str(args.deltas)],
            check=True, stdout=subprocess.PIPE,
        )
        measured = {m["name"]: m for m in json.loads(rust.stdout)["measurements"]}

        def show(label, seconds, nbytes):
            print(f"{label:<40} {seconds * 1000:10.1f} ms {nbytes / seconds / 1e6:10.1f} MB/s")

        for m in measured.values():
            show(f"xapi-rs {m['name']}", m["seconds"], m["bytes"])
            if m.get("peak_rss_bytes"):
                rss = m["peak_rss_bytes"]
                print(f"{'  peak RSS':<40} {rss / 2**20:10.1f} MiB "
                      f"({rss / m['bytes']:.2f}x the {m['bytes'] / 2**20:.1f} MiB input)")
        replay = measured["redo_log_replay"]
        print(f"{'  redo log deltas/s':<40} {args.deltas / replay['seconds']:10.0f} "
              f"({args.deltas} deltas after a 1,000-VM database record)")

        ratios = []
        python = {}
        for cls in CLASSES:
            xml = measured[f"xmlrpc_decode_{cls}"]
            py_xml = python_xmlrpc(xml["file"], args.repeat, args.vms)
            show(f"python xmlrpc.client.loads ({cls})", py_xml, xml["bytes"])
            python[f"xmlrpc_decode_{cls}"] = py_xml
            js = measured[f"jsonrpc_decode_{cls}"]
            py_json = python_json(js["file"], args.repeat, args.vms)
            show(f"python json.loads ({cls})", py_json, js["bytes"])
            python[f"jsonrpc_decode_{cls}"] = py_json
        for cls in CLASSES:
            for wire in ("xmlrpc", "jsonrpc"):
                name = f"{wire}_decode_{cls}"
                ratios.append((f"{wire}_{cls}_vs_python", python[name] / measured[name]["seconds"]))

        # The same decodes with mimalloc as the global allocator (an application's choice;
        # the library sets none): extra lines, the plain ratios above stay on the system one.
        mimalloc_bin = os.path.join(os.path.dirname(args.bin), "xapi-decode-mimalloc")
        if os.path.exists(mimalloc_bin):
            variant = subprocess.run(
                [mimalloc_bin, str(args.vms), str(args.repeat)]
                + [f"{name}={measured[name]['file']}" for name in python],
                check=True, stdout=subprocess.PIPE,
            )
            with_mimalloc = json.loads(variant.stdout)
            for name, seconds in with_mimalloc.items():
                show(f"xapi-rs {name} (mimalloc)", seconds, measured[name]["bytes"])
                wire, cls = name.split("_decode_")
                ratios.append((f"{wire}_{cls}_vs_python_mimalloc", python[name] / seconds))
        else:
            print(f"(no {mimalloc_bin}: mimalloc variant skipped)")

        for variant in ("xxhash", "sha1"):
            xva = measured[f"xva_read_{variant}"]
            floor = tar_floor(xva["file"], args.repeat)
            show(f"tar -xO ({variant} file)", floor, xva["bytes"])
            name = "xva_read_vs_tar" if variant == "xxhash" else "xva_read_sha1_vs_tar"
            ratios.append((name, floor / xva["seconds"]))

        backup_bin = os.path.join(os.path.dirname(args.bin), "xapi-bench-backup")
        if not args.no_backup and os.path.exists(backup_bin):
            ratios.extend(backup_vs_curl(backup_bin, workdir, args, show))
        elif not args.no_backup:
            print(f"(no {backup_bin}: backup benchmark skipped)")

        for name, ratio in ratios:
            print(f"ratio {name}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
