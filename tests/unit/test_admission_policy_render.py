"""The generated ValidatingAdmissionPolicy: every rule present, messages that name the field."""

from __future__ import annotations

import re
from pathlib import Path

from computegrid.api.admission import annotation_checks, rule_checks, validating_admission_policy
from computegrid.api.pod_security import ALL_RULES, LEVEL_OF
from computegrid.cli.crds import chart_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "charts" / "computegrid" / "templates" / "admission-policy.yaml"


def test_the_chart_ships_the_generated_policy() -> None:
    assert TEMPLATE.read_text(encoding="utf-8") == chart_template(), "run `make generate`"


def test_every_rule_is_enforced_at_admission() -> None:
    assert {rule for rule, *_ in rule_checks()} == set(ALL_RULES)


def test_messages_name_field_level_and_rule_like_the_operator() -> None:
    validations = validating_admission_policy("p")["spec"]["validations"]
    annotations, rules = (
        validations[: len(annotation_checks())],
        validations[len(annotation_checks()) :],
    )
    for v, (key, _, _) in zip(annotations, annotation_checks(), strict=True):
        assert v["message"].startswith(f"metadata.annotations[{key}]: ")
    for v, (rule, path, _, _) in zip(rules, rule_checks(), strict=True):
        assert v["message"].startswith(f"{path}: {LEVEL_OF[rule]}: ")
        assert v["message"].endswith(f"(rule {rule})")
        assert re.match(r"^(spec\.template\.(spec|metadata))", path)
        # A relaxed rule short-circuits; restricted ones also give way to level baseline.
        assert v["expression"].startswith(
            ("variables.level == 'baseline' || " if LEVEL_OF[rule] == "restricted" else "")
            + f"'{rule}' in variables.exempt || ("
        )


def test_kopf_patches_of_an_admitted_job_are_never_checked() -> None:
    [condition] = validating_admission_policy("p")["spec"]["matchConditions"]
    assert "object.spec != oldObject.spec" in condition["expression"]
