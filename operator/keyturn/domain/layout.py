"""Which key lands in which Secret item: slots and formats resolved against the ring."""

from __future__ import annotations

from dataclasses import dataclass

from keyturn.domain.model import Key, Ring
from keyturn.domain.spec import ItemFormat, SecretItem, Slot

MATERIAL_PREFIX = "key."


def material_item(kid: str, symmetric: bool) -> str:
    """The Secret data key that stores one key's private material (the source of truth)."""
    return f"{MATERIAL_PREFIX}{kid}.{'secret' if symmetric else 'pem'}"


def kid_of_material_item(item: str) -> str | None:
    if not item.startswith(MATERIAL_PREFIX):
        return None
    stem, _, suffix = item[len(MATERIAL_PREFIX) :].rpartition(".")
    return stem if suffix in ("pem", "secret") and stem else None


def slot_key(ring: Ring, slot: Slot) -> Key | None:
    if slot == Slot.CURRENT:
        return ring.current
    if slot == Slot.NEXT:
        return ring.next
    if slot == Slot.PREVIOUS:
        return ring.previous
    raise ValueError(f"unknown slot {slot!r}")


@dataclass(frozen=True)
class Placement:
    """One item to render: a single key in a format, or (jwks) every verifying key."""

    item: SecretItem
    keys: tuple[Key, ...]


def placements(ring: Ring, items: tuple[SecretItem, ...]) -> list[Placement]:
    """Items whose slot is empty are left out, so consumers never read a stale key."""
    out = []
    for item in items:
        if item.format == ItemFormat.JWKS:
            out.append(Placement(item, ring.verifying()))
            continue
        key = slot_key(ring, item.slot)
        if key is not None:
            out.append(Placement(item, (key,)))
    return out
