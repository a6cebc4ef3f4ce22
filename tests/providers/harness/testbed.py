"""The flagd testbed's data: feature files, flag files and launchpad configurations.

The testbed lives beside the repository (`../shared/conformance/flagd-testbed/`) and is read in
place; `FLAGD_TESTBED_DIR` points elsewhere. Its launchpad serves a directory laid out as
`rawflags/` (every flag file) plus `flags/allFlags.json` (the deep merge of the flag files whose
names do not start with `selector-`), and the configurations name sources by those relative
paths. `prepare_flag_dir` reproduces that layout so the same source names (and so the same
selectors) work against Ramp.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]

#: The merged file the launchpad writes, relative to the served directory.
MERGED_FLAGS = Path("flags/allFlags.json")
#: Where the launchpad keeps the individual flag files, relative to the served directory.
RAW_FLAGS = Path("rawflags")
#: The flag file the launchpad edits to fire change events.
CHANGING_FLAGS = RAW_FLAGS / "changing-flag.json"
CHANGING_FLAG_KEY = "changing-flag"


def testbed_dir() -> Path:
    """The testbed checkout: `FLAGD_TESTBED_DIR`, else `../shared/...` beside the repository."""
    configured = os.environ.get("FLAGD_TESTBED_DIR")
    path = (
        Path(configured)
        if configured
        else REPO_ROOT.parent / "shared" / "conformance" / "flagd-testbed"
    )
    if not (path / "gherkin").is_dir():
        raise FileNotFoundError(
            f"flagd testbed not found at {path} (expected gherkin/, flags/ and "
            "launchpad/configs/); set FLAGD_TESTBED_DIR"
        )
    return path


def features_dir() -> Path:
    return testbed_dir() / "gherkin"


def deep_merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Merges `other` into `into` the way the launchpad does: objects merge key by key,
    anything else is replaced."""
    for key, value in other.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            into[key] = deep_merge(current, value)
        else:
            into[key] = value
    return into


def merged_flags(raw_dir: Path) -> dict[str, Any]:
    """`allFlags.json`: every `*.json` in `raw_dir` except `selector-*`, merged in name order."""
    merged: dict[str, Any] = {}
    for path in sorted(raw_dir.glob("*.json")):
        if not path.name.startswith("selector-"):
            deep_merge(merged, json.loads(path.read_text()))
    return merged


def write_atomically(path: Path, content: str) -> None:
    """Replaces `path` in one rename, so a polling reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "w") as file:
        file.write(content)
    os.replace(temporary, path)


def write_merged_flags(flag_dir: Path) -> None:
    merged = merged_flags(flag_dir / RAW_FLAGS)
    write_atomically(flag_dir / MERGED_FLAGS, json.dumps(merged, indent=2))


def prepare_flag_dir(flag_dir: Path) -> None:
    """Lays out `flag_dir` as the launchpad's working directory: `rawflags/` holding a copy of
    every testbed flag file, and `flags/allFlags.json` merged from them."""
    raw = flag_dir / RAW_FLAGS
    raw.mkdir(parents=True, exist_ok=True)
    for path in sorted((testbed_dir() / "flags").glob("*.json")):
        (raw / path.name).write_text(path.read_text())
    write_merged_flags(flag_dir)


def toggle_changing_flag(flag_dir: Path) -> str:
    """Flips `changing-flag`'s default variant between `foo` and `bar` (what the launchpad's
    `/change` does), regenerates the merged file and returns the new default variant."""
    path = flag_dir / CHANGING_FLAGS
    document = json.loads(path.read_text())
    flag = document["flags"][CHANGING_FLAG_KEY]
    flag["defaultVariant"] = "bar" if flag["defaultVariant"] == "foo" else "foo"
    write_atomically(path, json.dumps(document, indent=2))
    write_merged_flags(flag_dir)
    return flag["defaultVariant"]


@dataclass(frozen=True)
class LaunchpadConfig:
    """One of `launchpad/configs/*.json`: what flagd is started with."""

    name: str
    #: Flag files, relative to the served directory, in order (later ones win).
    sources: tuple[str, ...]
    #: Static evaluation context the server adds (`context-value`).
    context: dict[str, Any] = field(default_factory=dict)
    #: The server does not answer the deprecated sync `GetMetadata` (`disable-sync-metadata`).
    sync_metadata_disabled: bool = False
    #: The configuration wants TLS on the evaluation port.
    tls: bool = False


def launchpad_config(name: str) -> LaunchpadConfig:
    path = testbed_dir() / "launchpad" / "configs" / f"{name}.json"
    document = json.loads(path.read_text())
    sources = tuple(source["uri"] for source in document["sources"])
    unsupported = [s["provider"] for s in document["sources"] if s["provider"] != "file"]
    if unsupported:
        raise ValueError(f"{path}: only file sources are served, not {unsupported}")
    return LaunchpadConfig(
        name=name,
        sources=sources,
        context=dict(document.get("context-value", {})),
        sync_metadata_disabled=bool(document.get("disable-sync-metadata", False)),
        tls="server-cert-path" in document,
    )
