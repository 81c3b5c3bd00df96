"""Principals: who a certificate's identity is, and what it may touch.

The principals file (YAML) maps identities (a certificate's SAN or subject CN) to one role and
its scope::

    principals:
      - {identity: cashier-H500112001, role: cashier, hospital: H500112001}
      - {identity: bureau-500112, role: bureau, region: "500112"}
      - {identity: auditor-zhang, role: auditor}
      - {identity: fund-610100, role: fund, funds: ["610100"]}
      - {identity: fund-cfpa, role: fund, funds: ["370200"], regions: ["421122"]}
      - {identity: cadre-421122-xinji, role: cadre, region: "421122", townships: [新集镇]}
      - {identity: cadre-421122-lijia, role: cadre, region: "421122", villages: [李家村]}
      - {identity: cadre-421122-wang, role: cadre, region: "421122",
         villages: [{township: 新集镇, village: 王庄村}]}
      - {identity: psn-ha-p1, role: person, person: "ha-p1"}

Scope: a cashier its ``hospital``; a bureau its ``region``; a fund operator its ``funds`` (and,
if given, only in ``regions``); a village cadre its ``region`` and ``townships`` and/or
``villages`` (a person of the region living in one of those townships, or in one of those
villages); a village is ``{township: T, village: V}`` (village V of township T only) or a plain
name V (a village named V in any township of the region: two townships with a village of that
name are both in scope, so give the township when names repeat); a person their own ``person`` id; an auditor everything (reads only).

It is validated like a policy table: a bad file is refused as a whole, each problem naming the
file, the line, the path and the value (``PrincipalsError``). ``PrincipalsFile`` reads it again
when it changes (mtime, size or inode), at most once per ``recheck`` seconds; a bad new version
is logged and the previous one stays in force.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.bill import HOSPITAL_RULE, is_hospital_code
from engine.errors import OnestopError, PolicyError, PolicyProblem, listed
from engine.policy.load import _Lines, compose
from engine.validation import dotted

log = logging.getLogger("onestop.auth")

Role = Literal["cashier", "bureau", "auditor", "fund", "cadre", "person"]
ROLES: tuple[Role, ...] = ("cashier", "bureau", "auditor", "fund", "cadre", "person")
MAX_PRINCIPALS_BYTES = 1024 * 1024


class PermissionDenied(OnestopError):
    """The caller is known but the call is outside its role or scope. The message never says
    whether what was asked for exists."""

    def __init__(self, msg: str = "outside your role or scope"):
        super().__init__(msg)


class Unauthenticated(OnestopError):
    """The caller could not be identified (no certificate identity, or one not in the
    principals file)."""

    def __init__(self, msg: str = "unknown caller"):
        super().__init__(msg)


class PrincipalsError(OnestopError):
    """A principals file was refused; every problem names file:line, path and reason."""

    def __init__(self, problems: list[PolicyProblem]):
        self.problems = list(problems)
        super().__init__(listed(self.problems, "\n"))


@dataclass(frozen=True)
class Principal:
    """One caller: a name (the identity that matched), its role and scope. ``local`` is the
    one principal of a plaintext loopback server: every role, no scope limit."""

    name: str
    role: Role | Literal["local"]
    hospitals: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)
    funds: frozenset[str] = field(default_factory=frozenset)
    #: a cadre's townships and villages (a person living in any of them is in scope):
    #: ``villages`` by name in any township, ``township_villages`` (township, village) pairs
    townships: frozenset[str] = field(default_factory=frozenset)
    villages: frozenset[str] = field(default_factory=frozenset)
    township_villages: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    #: a person's own id (role person)
    person: str = ""

    @property
    def unrestricted(self) -> bool:
        return self.role == "local"

    def has(self, roles: frozenset[str]) -> bool:
        return self.role == "local" or self.role in roles

    def lives_in_scope(self, township: str, village: str) -> bool:
        """A place (of the cadre's region) is in a cadre's townships or villages."""
        return (bool(township) and township in self.townships) or (
            bool(village)
            and (village in self.villages or (township, village) in self.township_villages)
        )


LOCAL = Principal("local", "local")

Identity = Annotated[str, Field(min_length=1, max_length=255)]
Code = Annotated[str, Field(min_length=1, max_length=32)]
Place = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
PersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]

#: role -> the scope fields it must give (all of them) and may give
_NEED: dict[str, tuple[str, ...]] = {
    "cashier": ("hospital",),
    "bureau": ("region",),
    "fund": ("funds",),
    "cadre": ("region",),
    "person": ("person",),
    "auditor": (),
}
_MAY: dict[str, tuple[str, ...]] = {
    "fund": ("regions",),
    "cadre": ("townships", "villages"),
}
_SCOPES = ("hospital", "region", "funds", "regions", "townships", "villages", "person")


class VillageOf(BaseModel):
    """A village of one township (a cadre's ``villages`` entry with its township)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    township: Place
    village: Place


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    identity: Identity
    role: Role
    hospital: str | None = None
    region: Code | None = None
    funds: tuple[Code, ...] | None = None
    regions: tuple[Code, ...] | None = None
    townships: tuple[Place, ...] | None = None
    villages: tuple[Place | VillageOf, ...] | None = None
    person: PersonId | None = None

    @model_validator(mode="after")
    def _scope(self) -> Entry:
        need, may = _NEED[self.role], _MAY.get(self.role, ())
        has = " and ".join((*need, *(f"optionally {m}" for m in may))) or "no scope"
        for name in _SCOPES:
            given = getattr(self, name) is not None
            if given and name not in need and name not in may:
                raise ValueError(f"{name} is given for role {self.role}; a {self.role} has {has}")
        for name in need:
            if getattr(self, name) in (None, ()):
                raise ValueError(f"a {self.role} needs {name}")
        if self.role == "cadre" and not (self.townships or self.villages):
            raise ValueError("a cadre needs townships or villages (or both)")
        if self.role == "fund" and self.regions == ():
            raise ValueError("regions is empty; leave it out for every region")
        if self.hospital is not None and not is_hospital_code(self.hospital):
            raise ValueError(f"hospital {self.hospital!r} {HOSPITAL_RULE}")
        return self

    def principal(self) -> Principal:
        return Principal(
            self.identity,
            self.role,
            hospitals=frozenset([self.hospital] if self.hospital else []),
            regions=frozenset([self.region] if self.region else self.regions or ()),
            funds=frozenset(self.funds or ()),
            townships=frozenset(self.townships or ()),
            villages=frozenset(v for v in self.villages or () if isinstance(v, str)),
            township_villages=frozenset(
                (v.township, v.village) for v in self.villages or () if isinstance(v, VillageOf)
            ),
            person=self.person or "",
        )


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    principals: tuple[Entry, ...] = ()


def parse_principals(text: str, file: str = "<principals>") -> dict[str, Principal]:
    """identity -> Principal from the YAML text; PrincipalsError naming every problem."""

    def refuse(reason: str, path: str = "", line: int | None = None) -> PrincipalsError:
        return PrincipalsError([PolicyProblem(file, path, reason, line)])

    if len(text.encode("utf-8", "surrogatepass")) > MAX_PRINCIPALS_BYTES:
        raise refuse(f"is above the limit of {MAX_PRINCIPALS_BYTES} bytes")
    try:
        node, data = compose(text, file)  # the policy tables' YAML rules: no aliases, bounded
    except PolicyError as err:
        raise PrincipalsError(err.problems) from None
    if not isinstance(data, dict):
        raise refuse("is not a mapping; write 'principals:' and a list of entries")
    lines = _Lines(node)
    try:
        doc = Document.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = tuple(e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = (
                    "is not a known field (identity, role, hospital, region, funds, regions, "
                    "townships, villages, person)"
                )
            elif e["type"] == "missing":
                msg = "is missing; it is required"
            elif "input" in e and not isinstance(e["input"], dict | list):
                msg = f"{e['input']!r}: {msg}"
            problems.append(PolicyProblem(file, dotted(loc), msg, lines.line(loc)))
        raise PrincipalsError(problems) from None
    out: dict[str, Principal] = {}
    problems = []
    for i, entry in enumerate(doc.principals):
        if entry.identity in out:
            path = f"principals[{i}].identity"
            problems.append(
                PolicyProblem(
                    file,
                    path,
                    f"{entry.identity!r} is given twice; one identity, one role",
                    lines.line(("principals", i, "identity")),
                )
            )
        out[entry.identity] = entry.principal()
    if problems:
        raise PrincipalsError(problems)
    return out


def load_principals(path: str | Path) -> dict[str, Principal]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PrincipalsError([PolicyProblem(str(p), "", f"cannot be read: {err}")]) from None
    return parse_principals(text, str(p))


class PrincipalsFile:
    """The principals of a file, read again when the file changes (checked at most every
    ``recheck`` seconds). A bad new version is logged, once, and the old one kept."""

    def __init__(self, path: str | Path, recheck: float = 1.0):
        self.path = Path(path)
        self.recheck = recheck
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._principals = load_principals(self.path)  # a bad file at start fails loudly
        self._checked = time.monotonic()
        self._refused: Any = None

    def _stat(self) -> Any:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def get(self, identity: str) -> Principal | None:
        return self.current().get(identity)

    def current(self) -> dict[str, Principal]:
        now = time.monotonic()
        if now - self._checked < self.recheck:
            return self._principals
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp == self._stamp or stamp == self._refused:
                return self._principals
            try:
                new = load_principals(self.path)
            except PrincipalsError as err:
                self._refused = stamp
                log.error(
                    "principals file %s changed but was refused; the previous version stays "
                    "in force (%d identities):\n%s",
                    self.path,
                    len(self._principals),
                    err,
                )
                return self._principals
            self._stamp, self._refused, self._principals = stamp, None, new
            log.info("principals file %s reloaded: %d identities", self.path, len(new))
            return new
