"""How passwords are hashed and checked: passlib's (libpass) context, shared by the
settings (which refuse a user line that holds no hash it knows) and the access backends.

The policy: pbkdf2_sha256 with at least libpass' default rounds. A hash of any other
scheme, or with fewer rounds, still logs in, and is replaced at its user's next login
where the backend can store one (pypirepo.access.rehash); raising the rounds here rolls a
stronger policy out the same way.
"""

from __future__ import annotations

from passlib.context import CryptContext

PASSWORDS = CryptContext(
    schemes=["pbkdf2_sha256", "pbkdf2_sha512", "sha512_crypt", "sha256_crypt", "bcrypt",
             "argon2"],
    default="pbkdf2_sha256",
    deprecated="auto",
    pbkdf2_sha256__min_rounds=29000,
)


def waste_a_hash(password: str, decoy: str | None = None) -> None:
    """As long as checking a real user's password, with the answer thrown away: what an
    unknown user's login costs, so that user names cannot be found by timing. decoy: a
    real user's hash (the same scheme and rounds), else passlib's dummy of the default."""
    try:
        if decoy is not None:
            PASSWORDS.verify(password, decoy)
        else:
            PASSWORDS.dummy_verify()
    except (ValueError, TypeError):
        pass
