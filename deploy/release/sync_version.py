"""One version in one place: pyproject.toml's ``[project] version`` is copied to the chart's
``version`` and ``appVersion`` and to ``computegrid.__version__``.

    python deploy/release/sync_version.py          # write them (make generate)
    python deploy/release/sync_version.py --check  # exit 1 naming each drifted file (make verify)

Edits are line-based, so the files keep their comments and layout.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# file -> (pattern of the line holding a version, how that line reads for version v)
TARGETS: dict[Path, list[tuple[str, str]]] = {
    ROOT / "charts/computegrid/Chart.yaml": [
        (r"^version: .*$", "version: {v}"),
        (r"^appVersion: .*$", 'appVersion: "{v}"'),
    ],
    ROOT / "operator/computegrid/__init__.py": [
        (r"^__version__ = .*$", '__version__ = "{v}"'),
    ],
}


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def synced(text: str, version: str, rules: list[tuple[str, str]], path: Path) -> str:
    for pattern, line in rules:
        text, count = re.subn(pattern, line.format(v=version), text, count=1, flags=re.M)
        if count != 1:
            raise SystemExit(f"sync-version: {path}: no line matches {pattern!r}")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift, exit 1 on any")
    args = parser.parse_args()
    version = project_version()
    drifted = []
    for path, rules in TARGETS.items():
        text = path.read_text(encoding="utf-8")
        wanted = synced(text, version, rules, path)
        if wanted != text:
            drifted.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    if args.check and drifted:
        for path in drifted:
            print(
                f"sync-version: {path} does not carry pyproject's version {version}: "
                "run 'make generate' and commit",
                file=sys.stderr,
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
