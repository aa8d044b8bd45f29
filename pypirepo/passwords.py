"""How passwords are hashed and checked: passlib's (libpass) context, shared by the
settings (which refuse a user line that holds no hash it knows) and the access backends.

The policy: pbkdf2_sha256 with at least libpass' default rounds. A hash of any other
scheme, or with fewer rounds, still logs in, and is replaced at its user's next login
where the backend can store one (pypirepo.access.rehash); raising the rounds here rolls a
stronger policy out the same way.
"""

from passlib.context import CryptContext

PASSWORDS = CryptContext(
    schemes=["pbkdf2_sha256", "pbkdf2_sha512", "sha512_crypt", "sha256_crypt", "bcrypt",
             "argon2"],
    default="pbkdf2_sha256",
    deprecated="auto",
    pbkdf2_sha256__min_rounds=29000,
)
