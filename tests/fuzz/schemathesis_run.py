"""How the schemathesis tests run: seeded, derandomized, bounded, and what they check."""

from __future__ import annotations

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

#: Examples per operation: bounded so that the whole document runs in well under two minutes.
MAX_EXAMPLES = 30
SEED = 20240606
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_config() -> schemathesis.Config:
    """Seeded, derandomized, bounded; no example database (the same cases every run)."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # A shared, loaded machine must not fail a run for being slow (no timing asserts).
            "suppress-health-check": ["too_slow"],
            "request-timeout": 60,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
