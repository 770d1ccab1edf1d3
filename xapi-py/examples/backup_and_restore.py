"""Back VMs up into a local repository with progress, check the repository, and restore one
of them as a new VM; type-checked with ``mypy --strict``.

    python backup_and_restore.py https://pool-master root PASSWORD /srv/backups VM-NAME...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import xapi_sdk
from xapi_sdk import backup


def progress(event: dict[str, Any]) -> None:
    """Print each VM as it starts and ends."""
    if event["event"] == "started":
        print(f"backing up {event['name_label']}…")
    elif event["outcome"] == "done":
        print(f"backed up {event['name_label']} in {event['seconds']:.1f} s")
    else:
        print(f"FAILED {event['name_label']}: {event['error']}")


def open_or_create(path: Path) -> backup.Repository:
    """The repository at ``path``, created when there is none yet."""
    if (path / "config").exists():
        return backup.Repository.open(path)
    return backup.Repository.create(path)


def main(url: str, user: str, password: str, repo_path: str, names: list[str]) -> int:
    """Back ``names`` up, verify, restore the first; the number of VMs that failed."""
    repo = open_or_create(Path(repo_path))
    with xapi_sdk.Session(url) as session:
        session.login_with_password(user, password, "1.0", "backup example")
        report = backup.backup(session, repo, vms=names, concurrency=2, on_progress=progress)
        failed = [vm for vm in report["vms"] if vm["outcome"] != "done"]
        checked = repo.verify()
        print(f"{checked['restore_points']} restore points, {len(checked['problems'])} problems")
        done = [vm for vm in report["vms"] if vm["outcome"] == "done"]
        if done:
            first = done[0]
            restored = backup.restore(
                session, repo, first["restore_point"], name=f"{first['name_label']} (restored)"
            )
            print(f"restored {first['name_label']} as VM {restored['uuid']}")
        return len(failed)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
