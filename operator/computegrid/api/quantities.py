"""Kubernetes resource quantities (``500m``, ``32Gi``, ``1.5``), parsed the way the API server does.

Written here rather than taken from the ``kubernetes`` client because the API layer must not
import the client (import-linter); the grammar is small and the tests pin it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

# The same grammar as k8s.io/apimachinery resource.Quantity, anchored, so the CRD pattern and
# the Python parser agree on what is a quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_NUMBER_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse ``"500m"`` to ``Decimal("0.5")``, ``"2Gi"`` to ``Decimal(2147483648)``.

    >>> parse_quantity("250m")
    Decimal('0.250')
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    if len(text) > 64 or not _QUANTITY_RE.match(text):
        raise QuantityError(f"{value!r} is not a quantity (examples: 500m, 4, 32Gi, 1.5Ti)")
    match = _NUMBER_RE.match(text)
    assert match is not None  # the full pattern matched already
    number, suffix = match.groups()
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, KeyError, ValueError) as exc:  # pragma: no cover - pattern guards
        raise QuantityError(f"{value!r} is not a quantity") from exc


def _validate(value: object) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity (examples: 500m, 4, 32Gi)")
    amount = parse_quantity(value)
    if amount < 0:
        raise QuantityError(f"{value!r} is negative")
    return str(value).strip()


#: A quantity kept as the user wrote it (``"32Gi"``), validated on the way in.
Quantity = Annotated[
    str,
    BeforeValidator(_validate),
    PlainSerializer(lambda v: v, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]


def format_quantity(amount: float, resource: str) -> str:
    """Render an amount in the unit people read for that resource (``"1.2Ti"``, ``"301"``)."""
    if resource == "memory" or resource.endswith("storage"):
        for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if abs(amount) >= size:
                return f"{amount / size:.4g}{unit}"
        return f"{amount:.0f}"
    if amount != int(amount) and abs(amount) < 100:
        return f"{round(amount * 1000):d}m"
    return f"{amount:.0f}"
