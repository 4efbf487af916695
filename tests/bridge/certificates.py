"""Throwaway X.509 certificates for the TLS tests, made with the ``openssl`` command line.

:func:`make_pki` writes a test CA and leaf certificates it signs (EC P-256 keys, valid for two
days, for 127.0.0.1 and localhost, usable as TLS server and client), and a second CA with one
leaf of its own, which the first CA does not vouch for.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


@dataclass(frozen=True)
class Identity:
    """A PEM certificate and its unencrypted PEM private key."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """The test CA, the leaves it signs, and a foreign CA's leaf."""

    ca: Path
    bridge: Identity
    peer: Identity
    node: Identity
    foreign_ca: Path
    foreign: Identity


def _openssl(*args: str | Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise RuntimeError("openssl is not installed: run scripts/install-test-deps.sh")
    proc = subprocess.run(
        [tool, *(str(a) for a in args)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr}")


def _ca(directory: Path, name: str) -> Identity:
    identity = Identity(directory / f"{name}.pem", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", identity.key, "-out", identity.certificate, "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return identity


def _leaf(directory: Path, name: str, ca: Identity) -> Identity:
    identity = Identity(directory / f"{name}.pem", directory / f"{name}.key")
    request = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text(_LEAF_EXTENSIONS)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", identity.key, "-out", request, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca.certificate, "-CAkey", ca.key,
        "-CAcreateserial", "-out", identity.certificate, "-days", "2", "-extfile", extensions,
    )  # fmt: skip
    return identity


def make_pki(directory: Path) -> Pki:
    """Write the test CA, the bridge's, a peer's and a node's certificates, and a foreign CA
    with its own leaf, under *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "test-ca")
    foreign_ca = _ca(directory, "foreign-ca")
    return Pki(
        ca=ca.certificate,
        bridge=_leaf(directory, "bridge", ca),
        peer=_leaf(directory, "peer", ca),
        node=_leaf(directory, "node", ca),
        foreign_ca=foreign_ca.certificate,
        foreign=_leaf(directory, "foreign", foreign_ca),
    )
