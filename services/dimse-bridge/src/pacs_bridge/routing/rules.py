"""Route rules: which stored instances go on to which nodes.

A route names the nodes it sends to (AE titles of configured ``nodes``) and what it matches,
each criterion a list of accepted values; a stored instance matches when every criterion given
accepts it::

    routes:
      - name: ct-to-planning
        calling_ae: [CT_SCANNER]     # the AE title the instance came from
        modality: [CT]               # Modality (0008,0060) of its series
        to: [PLANNING]
      - name: everything-to-backup
        match_all: true
        to: [BACKUP]

``calling_ae`` is the Sending AE Title (0002,0017) the bridge writes into the File Meta
Information of what it receives by C-STORE (else the Source AE Title (0002,0016) of an object
uploaded by STOW-RS), as the API's change feed reports it. An instance is never sent back to
the node it came from, so two archives routing to each other do not loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from pacs_common.changefeed import Change
from pacs_common.dimse import validate_ae_title
from pacs_common.uids import InvalidUIDError, validate_uid
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Characters of a route name (it appears in logs, the status API and the command line).
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Route(BaseModel):
    """One routing rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    to: tuple[str, ...] = Field(min_length=1, description="AE titles of the destination nodes.")
    calling_ae: frozenset[str] = Field(
        frozenset(), description="AE titles the instance may come from (any when empty)."
    )
    modality: frozenset[str] = Field(frozenset(), description="Modalities (any when empty).")
    sop_class: frozenset[str] = Field(frozenset(), description="SOP Class UIDs (any when empty).")
    match_all: bool = Field(False, description="Route every stored instance (no criterion).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not set(value) <= _NAME_CHARACTERS:
            raise ValueError(f"route name {value!r} may hold letters, digits, '-', '_', '.' only")
        return value

    @field_validator("to", "calling_ae", mode="after")
    @classmethod
    def _titles(cls, value: Iterable[str]) -> Iterable[str]:
        titles = [validate_ae_title(title) for title in value]
        return tuple(dict.fromkeys(titles)) if isinstance(value, tuple) else frozenset(titles)

    @field_validator("modality", mode="after")
    @classmethod
    def _modalities(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(m.strip().upper() for m in value)

    @field_validator("sop_class", mode="after")
    @classmethod
    def _sop_classes(cls, value: frozenset[str]) -> frozenset[str]:
        try:
            return frozenset(validate_uid(uid, what="SOP Class UID") for uid in value)
        except InvalidUIDError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _criteria(self) -> Route:
        has_criteria = bool(self.calling_ae or self.modality or self.sop_class)
        if has_criteria == self.match_all:
            raise ValueError(
                f"route {self.name!r}: give calling_ae, modality or sop_class, or match_all: true"
                " to route every instance (not both)"
            )
        return self

    def matches(self, change: Change) -> bool:
        """True when every criterion of the route accepts the stored instance."""
        return self.match_all or (
            (not self.calling_ae or change.sender_ae in self.calling_ae)
            and (not self.modality or change.modality.upper() in self.modality)
            and (not self.sop_class or change.sop_class in self.sop_class)
        )


def destinations(routes: Iterable[Route], change: Change) -> list[tuple[str, str]]:
    """``(destination AE title, route name)`` for each node a stored instance goes to, each
    node once (the first route naming it), never the node the instance came from."""
    found: dict[str, str] = {}
    for route in routes:
        if route.matches(change):
            for title in route.to:
                if title != change.sender_ae:
                    found.setdefault(title, route.name)
    return list(found.items())
