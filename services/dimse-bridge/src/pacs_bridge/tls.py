"""DICOM TLS (PS3.15 Annex B, Secure Transport Connection Profiles): the bridge's contexts.

The Basic TLS Secure Transport Connection Profile (PS3.15 B.1) and the BCP 195 profiles that
replace it carry the DICOM Upper Layer over TLS unchanged: the A-ASSOCIATE-RQ is the first
record after the handshake. :func:`server_context` is the context of the listening port (TLS
1.2 or later by default, as BCP 195 asks; the peer's certificate required and verified when
``tls_ca_certificates`` is set), :func:`node_context` the one the bridge connects to a
``tls: true`` node with (C-MOVE sub-associations): the node's certificate is verified, its host
name included, and the bridge's own certificate is presented when it has one.

Every file is read and checked here, when the bridge starts (or reloads its nodes): a missing
or unreadable file, a file without a PEM certificate or key, an encrypted key and a key that
does not belong to the certificate each stop the start with a :class:`TlsConfigError` naming
the setting and the file.

The server context completes each handshake in the association's own thread, not in the
thread that accepts connections (:class:`DeferredHandshakeContext`): pynetdicom wraps accepted
sockets while accepting, so one peer that connects and stays silent would otherwise stop the
bridge accepting anyone.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from pacs_bridge.settings import ConfigError, Node, Settings

#: ``tls_minimum_version`` values.
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsConfigError(ConfigError):
    """A TLS setting names a file that cannot be used (unreadable, not PEM, not matching)."""


class DeferredHandshakeContext(ssl.SSLContext):
    """A server context whose sockets do their handshake on first read, in the association's
    thread; a read or write on them (the handshake, the rest of a PDU) fails after
    *socket_timeout* seconds of silence instead of blocking that thread forever."""

    socket_timeout: float | None = None

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        if server_side:
            do_handshake_on_connect = False
            sock.settimeout(self.socket_timeout)
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The listening port's context, or ``None`` without ``tls_certificate``."""
    if settings.tls_certificate is None or settings.tls_private_key is None:
        return None
    context = DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.socket_timeout = settings.network_timeout
    context.minimum_version = TLS_VERSIONS[settings.tls_minimum_version]
    _load_identity(context, settings.tls_certificate, settings.tls_private_key)
    if settings.tls_ca_certificates is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        _load_authorities(context, settings.tls_ca_certificates, "tls_ca_certificates")
    return context


def node_context(title: str, node: Node, settings: Settings) -> ssl.SSLContext | None:
    """The context to connect to *node* (named *title*) with, or ``None`` when it has no TLS."""
    if not node.tls:
        return None
    if node.tls_ca_certificates is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # host name checked, no system CAs
        _load_authorities(context, node.tls_ca_certificates, f"nodes.{title}.tls_ca_certificates")
    elif settings.tls_ca_certificates is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_authorities(context, settings.tls_ca_certificates, "tls_ca_certificates")
    else:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # the system's CAs
    context.minimum_version = TLS_VERSIONS[settings.tls_minimum_version]
    if settings.tls_certificate is not None and settings.tls_private_key is not None:
        _load_identity(context, settings.tls_certificate, settings.tls_private_key)
    return context


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise TlsConfigError(f"{setting} {path} cannot be read: {exc.strerror}") from None


def _load_identity(context: ssl.SSLContext, certificate: Path, key: Path) -> None:
    """Load the certificate (chain) and its private key, naming the file at fault."""
    if "-----BEGIN CERTIFICATE-----" not in _read(certificate, "tls_certificate"):
        raise TlsConfigError(f"tls_certificate {certificate} holds no PEM certificate")
    pem_key = _read(key, "tls_private_key")
    if "PRIVATE KEY-----" not in pem_key:
        raise TlsConfigError(f"tls_private_key {key} holds no PEM private key")
    if "ENCRYPTED" in pem_key:
        raise TlsConfigError(
            f"tls_private_key {key} is encrypted: the bridge needs an unencrypted key"
        )
    try:
        context.load_cert_chain(certificate, key, password=_no_password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(
                f"tls_private_key {key} is not the key of tls_certificate {certificate}"
            ) from None
        raise TlsConfigError(
            f"tls_certificate {certificate} with tls_private_key {key} cannot be used: "
            f"{exc.reason or exc}"
        ) from None


def _load_authorities(context: ssl.SSLContext, path: Path, setting: str) -> None:
    """Trust the CA certificates in *path* (the value of *setting*)."""
    if "-----BEGIN CERTIFICATE-----" not in _read(path, setting):
        raise TlsConfigError(f"{setting} {path} holds no PEM certificate")
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"{setting} {path} cannot be used: {exc.reason or exc}") from None


def _no_password() -> bytes:
    """Never prompt on the terminal for a key's password (the key was checked unencrypted)."""
    raise TlsConfigError("the private key asks for a password: give an unencrypted key")
