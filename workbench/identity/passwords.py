"""Password hashing with argon2id (argon2-cffi), and random secrets."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workbench.errors import ValidationError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "check_password_policy",
    "generate_secret",
    "hash_password",
    "hash_secret",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# a hash of a random value: verifying against it makes "no such user" cost as much as
# "wrong password", so response times do not reveal which usernames exist
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_policy(password: str) -> None:
    """Raise ValidationError unless ``password`` is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a passphrase of several words is easiest to remember)"
        )


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (policy checked first)."""
    check_password_policy(password)
    return _hasher.hash(password)


def hash_secret(secret: str) -> str:
    """An argon2id hash of a generated secret (client secrets; no policy check)."""
    return _hasher.hash(secret)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; None hashes never match (and take as
    long as a real check)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def generate_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret (passwords printed once, client secrets)."""
    return secrets.token_urlsafe(nbytes)
