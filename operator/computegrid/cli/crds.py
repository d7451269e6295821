"""``computegrid crds``: print (or write) the CRDs generated from the API types."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from computegrid.api.admission import validating_admission_policy
from computegrid.api.crdgen import all_crds

HEADER = "# Generated from computegrid.api by `make generate`; do not edit.\n"


def render(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)


def chart_template() -> str:
    """The chart's templates/admission-policy.yaml: the pod policy, named after the release."""
    body = yaml.safe_dump(
        validating_admission_policy("@RELEASE@-pod-policy"), sort_keys=False, width=100
    )
    if "{{" in body or "}}" in body:  # Helm would read them as template actions
        raise ValueError("generated CEL contains '{{' or '}}'")
    body = body.replace("@RELEASE@", "{{ .Release.Name }}")
    return f"{HEADER}{{{{- if .Values.admission.enabled }}}}\n{body}{{{{- end }}}}\n"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "crds", help="print the CRDs generated from the API types"
    )
    parser.add_argument("--out", type=Path, help="write one file per CRD into this folder")
    parser.add_argument(
        "--admission-policy",
        type=Path,
        help="also write the chart template of the pod policy's ValidatingAdmissionPolicy here",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    crds = all_crds()
    if args.admission_policy is not None:
        args.admission_policy.write_text(chart_template(), encoding="utf-8")
    if args.out is None:
        print("---\n".join(render(crd) for crd in crds.values()), end="")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, crd in crds.items():
        (args.out / name).write_text(render(crd), encoding="utf-8")
    return 0
