"""A real small disk for tests: a tmpfs of a few MiB mounted on a fresh folder.

Mounting needs root (the test suite runs as root); a test that asks for a small
disk fails, with the reason, where it cannot have one: it never skips.
"""

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def small_disk(size_mib: int) -> Iterator[Path]:
    """A folder on a filesystem of its own of `size_mib` MiB, unmounted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="warren-small-disk-"))
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            raise AssertionError(
                f"this test needs a small disk: mounting a tmpfs failed as uid {os.getuid()} "
                f"(run the tests as root): {mounted.stderr.strip() or mounted.returncode}"
            )
        try:
            yield folder
        finally:
            subprocess.run(["umount", "--lazy", str(folder)], check=True, capture_output=True)
    finally:
        with contextlib.suppress(OSError):
            folder.rmdir()


def free_bytes(folder: Path) -> int:
    disk = os.statvfs(folder)
    return disk.f_bavail * disk.f_frsize


def fill(folder: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about `leave_bytes` free on the folder's disk."""
    ballast = folder / "ballast"
    with ballast.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        while (room := free_bytes(folder) - leave_bytes) > 0:
            out.write(chunk[: min(len(chunk), room)])
            out.flush()
            os.fsync(out.fileno())
    return ballast
