"""Reading user-supplied YAML safely: job files for ``explain``, fleet files, policies.

Hostile YAML must neither hang nor exhaust memory: aliases are refused outright (a "billion
laughs" document expands through them), files are size-capped, and deep nesting is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: far above any real ComputeJob or fleet file


class InputError(ValueError):
    """Unreadable input; the message names the file and what is wrong."""


def parse_documents(text: str, source: str) -> list[Any]:
    """Every non-empty document of a YAML stream, or InputError naming ``source``."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES // 1024} KiB")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise InputError(f"{source}: YAML aliases (*name) are not accepted")
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply") from None
    if not documents:
        raise InputError(f"{source}: no YAML document in it")
    return documents


def read_documents(path: Path) -> list[Any]:
    """``parse_documents`` of a file; a missing or binary file is an InputError too."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{path}: larger than {MAX_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a YAML file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    return parse_documents(text, str(path))
