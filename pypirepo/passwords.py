"""How passwords are hashed and checked: passlib's context, shared by the settings (which
refuse a user line that holds no hash it knows) and the access backends."""

from passlib.context import CryptContext

PASSWORDS = CryptContext(
    schemes=["pbkdf2_sha256", "pbkdf2_sha512", "sha512_crypt", "sha256_crypt", "bcrypt",
             "argon2"],
    default="pbkdf2_sha256",
)
