"""The gateways' credential cryptography: DES ``submitInfo`` and Entinfo's MD5 password.

``submitInfo`` is DES-CBC with PKCS#7 padding; key and IV are both the first 8 characters of the
upper-case hex SHA-1 of the password; the plaintext is GB2312; the ciphertext is upper-case hex.
"""

from __future__ import annotations

import hashlib

from Crypto.Cipher import DES
from Crypto.Util.Padding import pad, unpad

from dispatcher.errors import TextEncodingError


def des_key(password: str) -> bytes:
    return hashlib.sha1(password.encode("utf-8")).hexdigest().upper()[:8].encode("ascii")


def unencodable_characters(text: str, encoding: str = "gb2312") -> str:
    """The distinct characters of ``text`` that ``encoding`` cannot encode, in order of appearance."""
    bad: dict[str, None] = {}
    for char in text:
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            bad[char] = None
    return "".join(bad)


def encode_gb2312(text: str) -> bytes:
    try:
        return text.encode("gb2312")
    except UnicodeEncodeError:
        raise TextEncodingError(unencodable_characters(text)) from None


def des_encrypt(plaintext: str, password: str) -> str:
    key = des_key(password)
    cipher = DES.new(key, DES.MODE_CBC, iv=key)
    return cipher.encrypt(pad(encode_gb2312(plaintext), DES.block_size)).hex().upper()


def des_decrypt(ciphertext_hex: str, password: str) -> str:
    """Inverse of :func:`des_encrypt`; raises ``ValueError`` on anything undecryptable."""
    key = des_key(password)
    cipher = DES.new(key, DES.MODE_CBC, iv=key)
    data = bytes.fromhex(ciphertext_hex)
    return unpad(cipher.decrypt(data), DES.block_size).decode("gb2312")


def entinfo_password(sn: str, password: str) -> str:
    """Entinfo's ``pwd`` field: MD5(sn + password), 32 upper-case hex characters."""
    return hashlib.md5((sn + password).encode("utf-8")).hexdigest().upper()
