"""A local certificate authority and its certificates, made with ``cryptography``.

``onestop certs --out DIR --hospital H --bureau R --auditor NAME --fund CODE --person ID
--cadre R/TOWNSHIP --cadre-village R/TOWNSHIP/VILLAGE`` writes (``--cadre-village R/VILLAGE``,
without the township: a village of that name in any township of the region):

- ``ca.pem`` / ``ca.key``: the CA (signs everything below; keep ca.key offline),
- ``server.pem`` / ``server.key``: the server, for ``localhost`` and ``127.0.0.1`` (and any
  ``--server-name``),
- one ``<identity>.pem`` / ``<identity>.key`` per client: its identity (``cashier-H``,
  ``bureau-R``, ``auditor-NAME``, ``fund-CODE``, ``psn-ID``, ``cadre-R-PLACE``) is the
  certificate's subject CN and, when it is ASCII, a DNS SAN,
- ``principals.yaml``: each identity with its role and scope, for ``onestop serve --principals``.

Run again on the same directory, it reuses the CA, issues certificates for the clients named
and adds them to ``principals.yaml`` (``--force``: a new CA, and only the clients named).
Keys are EC P-256, written owner-read-only. Tests build their certificates with the same code.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 825  # validity of the certificates made here
CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "onestop"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


class Authority:
    """A CA that signs server and client certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.cert, self.key = cert, key

    @classmethod
    def new(cls, name: str = "onestop local CA", days: int = DAYS) -> Authority:
        key = _key()
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> Authority:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an EC key made by onestop certs")
        return cls(x509.load_pem_x509_certificate(cert_pem), key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def issue(
        self,
        common_name: str,
        *,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        server: bool = False,
        days: int = DAYS,
    ) -> Issued:
        """A certificate for ``common_name`` (a client's identity, or a server's name)."""
        key = _key()
        now = dt.datetime.now(dt.UTC)
        san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        san += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def identity(role: str, scope: str) -> str:
    """The identity (certificate CN and DNS SAN) ``onestop certs`` gives a client."""
    if role == "person":
        return f"psn-{scope}"
    if role == "cadre":
        return "cadre-" + scope.replace("/", "-")
    return f"{role}-{scope}".lower() if role != "cashier" else f"cashier-{scope}"


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        os.chmod(path, 0o600)


def _dns_ok(name: str) -> bool:
    return (
        name.isascii() and all(c.isalnum() or c in "-." for c in name) and not name.startswith("-")
    )


@dataclass(frozen=True)
class Client:
    identity: str
    role: str
    scope: tuple[str, ...] = ()  # hospital, region, funds or person; a cadre: its region
    townships: tuple[str, ...] = ()  # a cadre's
    villages: tuple[str, ...] = ()  # a cadre's, by name in any township
    township_villages: tuple[tuple[str, str], ...] = ()  # a cadre's (township, village)
    regions: tuple[str, ...] = ()  # a fund operator's, if limited


def _cadre(spec: str, village: bool) -> Client:
    """A cadre from REGION/PLACE (a township, or with ``village`` a village: REGION/VILLAGE in
    any township, REGION/TOWNSHIP/VILLAGE of that township)."""
    region, sep, place = spec.partition("/")
    if village and "/" in place:
        township, _, name = place.partition("/")
        if not region or not township or not name or "/" in name:
            raise ValueError(f"{spec!r}: give REGION/TOWNSHIP/VILLAGE or REGION/VILLAGE")
        return Client(identity("cadre", spec), "cadre", (region,),
                      township_villages=((township, name),))  # fmt: skip
    if not sep or not region or not place:
        raise ValueError(f"{spec!r}: give REGION/{'VILLAGE' if village else 'TOWNSHIP'}")
    return Client(
        identity("cadre", spec), "cadre", (region,),
        townships=() if village else (place,), villages=(place,) if village else (),
    )  # fmt: skip


def clients_for(
    hospitals: list[str],
    bureaus: list[str],
    auditors: list[str],
    funds: list[str],
    persons: list[str] | tuple[str, ...] = (),
    cadres: list[str] | tuple[str, ...] = (),
    cadre_villages: list[str] | tuple[str, ...] = (),
) -> list[Client]:
    out = [Client(identity("cashier", h), "cashier", (h,)) for h in hospitals]
    out += [Client(identity("bureau", r), "bureau", (r,)) for r in bureaus]
    out += [Client(identity("auditor", a), "auditor") for a in auditors]
    out += [Client(identity("fund", f), "fund", (f,)) for f in funds]
    out += [Client(identity("person", p), "person", (p,)) for p in persons]
    out += [_cadre(c, village=False) for c in cadres]
    out += [_cadre(c, village=True) for c in cadre_villages]
    return out


def _str(x: str) -> str:
    import json

    return json.dumps(x, ensure_ascii=False)


def _list(xs: tuple[str, ...]) -> str:
    return "[" + ", ".join(_str(x) for x in xs) + "]"


def principals_yaml(clients: list[Client]) -> str:
    """The principals file for ``clients`` (see ``adapters.auth.principals``)."""
    key = {"cashier": "hospital", "bureau": "region", "cadre": "region", "person": "person"}
    lines = [
        "# onestop principals: certificate identity (SAN or subject CN) -> role and scope.",
        "# Edited while the server runs: it is read again within a second of a change.",
        "principals:",
    ]
    for c in clients:
        lines.append(f'  - identity: "{c.identity}"')
        lines.append(f"    role: {c.role}")
        if c.role == "fund":
            lines.append(f"    funds: {_list(c.scope)}")
            if c.regions:
                lines.append(f"    regions: {_list(c.regions)}")
        elif c.role in key:
            lines.append(f"    {key[c.role]}: {_list(c.scope[:1])[1:-1]}")
        if c.townships:
            lines.append(f"    townships: {_list(c.townships)}")
        if c.villages or c.township_villages:
            items = [_str(v) for v in c.villages] + [
                f"{{township: {_str(t)}, village: {_str(v)}}}" for t, v in c.township_villages
            ]
            lines.append(f"    villages: [{', '.join(items)}]")
    return "\n".join(lines) + "\n"


def make_all(
    out: Path,
    clients: list[Client],
    server_names: tuple[str, ...] = (),
    authority: Authority | None = None,
    kept: list[Client] | None = None,
) -> Authority:
    """CA (new unless given), server and client certificates and principals.yaml in ``out``
    (listing ``kept``, clients issued before, too)."""
    out.mkdir(parents=True, exist_ok=True)
    ca = authority or Authority.new()
    _write(out / "ca.pem", ca.cert_pem)
    _write(out / "ca.key", ca.key_pem, secret=True)
    srv = ca.issue(
        "localhost", dns=("localhost", *server_names), ips=("127.0.0.1", "::1"), server=True
    )
    _write(out / "server.pem", srv.cert_pem)
    _write(out / "server.key", srv.key_pem, secret=True)
    for c in clients:
        got = ca.issue(c.identity, dns=(c.identity,) if _dns_ok(c.identity) else ())
        _write(out / f"{c.identity}.pem", got.cert_pem)
        _write(out / f"{c.identity}.key", got.key_pem, secret=True)
    (out / "principals.yaml").write_text(principals_yaml([*(kept or []), *clients]), "utf-8")
    return ca


def _client_of(p: Any) -> Client:
    scope = {"cashier": p.hospitals, "bureau": p.regions, "fund": p.funds, "cadre": p.regions,
             "person": [p.person] if p.person else []}.get(p.role, ())  # fmt: skip
    return Client(
        p.name, p.role, tuple(sorted(scope)), townships=tuple(sorted(p.townships)),
        villages=tuple(sorted(p.villages)), township_villages=tuple(sorted(p.township_villages)),
        regions=tuple(sorted(p.regions)) if p.role == "fund" else (),
    )  # fmt: skip


def certs(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")],
    hospital: Annotated[
        list[str] | None, typer.Option("--hospital", help="A cashier of this hospital (code).")
    ] = None,
    bureau: Annotated[
        list[str] | None, typer.Option("--bureau", help="A bureau of this region (code).")
    ] = None,
    auditor: Annotated[
        list[str] | None, typer.Option("--auditor", help="An auditor of this name.")
    ] = None,
    fund: Annotated[
        list[str] | None, typer.Option("--fund", help="An operator of this fund code.")
    ] = None,
    person: Annotated[
        list[str] | None, typer.Option("--person", help="An insured person (their id).")
    ] = None,
    cadre: Annotated[
        list[str] | None,
        typer.Option("--cadre", metavar="REGION/TOWNSHIP", help="A cadre of this township."),
    ] = None,
    cadre_village: Annotated[
        list[str] | None,
        typer.Option(
            "--cadre-village",
            metavar="REGION/TOWNSHIP/VILLAGE",
            help="A cadre of this village of this township (REGION/VILLAGE: a village of that "
            "name in any township of the region).",
        ),
    ] = None,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Another DNS name for the server certificate."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a CA already in --out.")
    ] = False,
) -> None:
    """Make a local CA, a server certificate (localhost, 127.0.0.1) and client certificates,
    and the principals file that maps them to their roles (for `onestop serve --principals`).
    An existing CA in --out is reused unless --force."""
    from adapters.auth.principals import PrincipalsError, load_principals

    try:
        clients = clients_for(
            hospital or [], bureau or [], auditor or [], fund or [], person or [], cadre or [],
            cadre_village or [],
        )  # fmt: skip
    except ValueError as e:
        typer.echo(f"onestop certs: {e}", err=True)
        raise typer.Exit(2) from None
    existing = None
    kept: list[Client] = []
    if (out / "ca.pem").exists() and (out / "ca.key").exists() and not force:
        existing = Authority.load((out / "ca.pem").read_bytes(), (out / "ca.key").read_bytes())
        if (out / "principals.yaml").exists():  # keep the principals issued before
            try:
                before = load_principals(out / "principals.yaml")
            except PrincipalsError as e:
                typer.echo(f"onestop certs: {e}", err=True)
                raise typer.Exit(2) from None
            new = {c.identity for c in clients}
            kept = [_client_of(p) for name, p in before.items() if name not in new]
    make_all(out, clients, tuple(server_name or ()), existing, kept)
    try:
        load_principals(out / "principals.yaml")
    except PrincipalsError as e:  # a bad hospital or region code given on the command line
        typer.echo(f"onestop certs: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{'reused' if existing else 'new'} CA {out / 'ca.pem'}; server {out}/server.pem")
    for c in clients:
        typer.echo(f"{c.role:8} {c.identity}: {out}/{c.identity}.pem, .key")
    typer.echo(f"principals: {out / 'principals.yaml'}")
