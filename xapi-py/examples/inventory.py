"""List a pool's VMs with the typed API, blocking and with asyncio; type-checked with
``mypy --strict``.

    python inventory.py https://pool-master root PASSWORD
"""

from __future__ import annotations

import asyncio
import sys

import xapi_sdk
from xapi_sdk.api import VmPowerState, VmRecord


def running(records: dict[xapi_sdk.Ref, VmRecord]) -> list[VmRecord]:
    """The VMs (not templates, not dom0) that are running, by name."""
    vms = [
        vm
        for vm in records.values()
        if not vm.is_a_template and not vm.is_control_domain
        and vm.power_state is VmPowerState.RUNNING
    ]
    return sorted(vms, key=lambda vm: vm.name_label)


def blocking(url: str, user: str, password: str) -> int:
    """Print every VM with its power state and memory; the number of running VMs."""
    with xapi_sdk.Session(url) as session:
        session.login_with_password(user, password, "1.0", "inventory example")
        records = session.vm.get_all_records()
        for ref, vm in sorted(records.items(), key=lambda item: item[1].name_label):
            if vm.is_a_template:
                continue
            mib = vm.memory_static_max // (1024 * 1024)
            print(f"{vm.name_label:30} {vm.power_state.value:10} {mib:6} MiB  {ref.opaque}")
        return len(running(records))


async def concurrently(url: str, user: str, password: str) -> tuple[int, int]:
    """The number of VMs and of hosts, asked for at the same time."""
    async with xapi_sdk.AsyncSession(url) as session:
        await session.login_with_password(user, password, "1.0", "inventory example")
        vms, hosts = await asyncio.gather(session.vm.get_all(), session.host.get_all())
        return len(vms), len(hosts)


def main(argv: list[str]) -> int:
    """Run both halves against the pool named on the command line."""
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, user, password = argv[1:]
    try:
        count = blocking(url, user, password)
        vms, hosts = asyncio.run(concurrently(url, user, password))
    except xapi_sdk.Failure as failure:
        print(f"XAPI error {failure.code}: {failure.params}", file=sys.stderr)
        return 1
    except xapi_sdk.TransportError as error:
        print(f"cannot reach {url}: {error}", file=sys.stderr)
        return 1
    print(f"{count} running; {vms} VM objects on {hosts} hosts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
