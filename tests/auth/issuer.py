"""A real, tiny OpenID Connect issuer on 127.0.0.1: discovery and JWKS over HTTP, RSA and EC
signing keys made by ``cryptography``, tokens minted with PyJWT; it can rotate its keys.

It serves ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4) and
``/jwks`` (RFC 7517 §5) from a ``ThreadingHTTPServer`` in a thread, and counts the JWKS reads
so a test can see the service's cache and its refresh on an unknown ``kid``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

_kids = count(1)


@dataclass
class SigningKey:
    kid: str
    private: Any
    algorithm: str

    @classmethod
    def rsa(cls, algorithm: str = "RS256") -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(f"rsa-{next(_kids)}", private, algorithm)

    @classmethod
    def ec(cls) -> SigningKey:
        return cls(f"ec-{next(_kids)}", ec.generate_private_key(ec.SECP256R1()), "ES256")

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        tool = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
        data: dict[str, Any] = tool.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, use="sig")
        return data


class Issuer:
    """The issuer at ``url``; ``mint`` signs tokens, ``rotate`` replaces the RSA key."""

    def __init__(self) -> None:
        self.rsa = SigningKey.rsa()
        self.ec = SigningKey.ec()
        self.jwks_reads = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
                    }
                elif self.path == "/jwks":
                    with issuer._lock:
                        issuer.jwks_reads += 1
                        body = {"keys": [key.jwk() for key in (issuer.rsa, issuer.ec)]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self) -> SigningKey:
        """A new RSA key replaces the old one (whose tokens then fail); returns the old one."""
        with self._lock:
            old, self.rsa = self.rsa, SigningKey.rsa()
        return old

    def claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": audience,
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "scope": "read",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        audience: str,
        *,
        key: SigningKey | None = None,
        algorithm: str | None = None,
        **claims: Any,
    ) -> str:
        """A token for *audience*, signed by *key* (the RSA key by default); a claim given as
        None is left out."""
        key = key or self.rsa
        return jwt.encode(
            self.claims(audience, **claims),
            key.private,
            algorithm=algorithm or key.algorithm,
            headers={"kid": key.kid},
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
