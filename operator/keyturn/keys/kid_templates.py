"""Kids rendered from a `kid.template` ("{date}_v{n}_prod").

The template is user input and the kid becomes part of a Secret data key, so the placeholders are
a closed set and the result must fit `[A-Za-z0-9._-]{1,128}`; anything else is a ValueError that
says which character or placeholder is wrong.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Final

__all__ = ["render_kid_template"]

_KID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_KID_PLACEHOLDERS: Final = frozenset({"date", "time", "n", "name", "namespace"})


def render_kid_template(template: str, *, now: datetime, n: int, name: str, namespace: str) -> str:
    """Render a Template-strategy kid; it must fit `[A-Za-z0-9._-]{1,128}` (a Secret data-key suffix).

    `now` must be timezone-aware ({date}/{time} are UTC); format specs are allowed ("{n:03d}"),
    conversions, indexing and attribute access are not.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed kid template {template!r}: {exc}") from None
    for _, field, _, conversion in fields:
        if field is None:
            continue
        if field not in _KID_PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{field}}} in kid template; "
                f"allowed: {', '.join('{' + p + '}' for p in sorted(_KID_PLACEHOLDERS))}"
            )
        if conversion is not None:
            raise ValueError(f"conversions like !{conversion} are not allowed in kid templates")
    utc = now.astimezone(UTC)
    values = {
        "date": utc.strftime("%Y%m%d"),
        "time": utc.strftime("%H%M%S"),
        "n": n,
        "name": name,
        "namespace": namespace,
    }
    try:
        kid = template.format_map(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"kid template {template!r} cannot be rendered: {exc}") from None
    if not _KID_RE.fullmatch(kid):
        if not kid:
            raise ValueError("kid template renders an empty kid")
        if len(kid) > 128:
            raise ValueError(f"kid template renders a kid of {len(kid)} characters; at most 128")
        bad = sorted({ch for ch in kid if not re.fullmatch(r"[A-Za-z0-9._-]", ch)})
        raise ValueError(
            f"kid {kid!r} contains characters not allowed in a kid: {' '.join(repr(c) for c in bad)} "
            "(allowed: letters, digits, '.', '_', '-')"
        )
    return kid
