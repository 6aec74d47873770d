"""Public codes for clients and referrals: random, pronounceable over a phone, no PII."""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def new_code(prefix: str) -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{prefix}-{chars[:5]}-{chars[5:]}"
