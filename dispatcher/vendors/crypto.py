"""The gateways' credential cryptography: DES ``submitInfo`` and Entinfo's MD5 password.

``submitInfo`` is DES-CBC with PKCS#7 padding; key and IV are both the first 8 characters of the
upper-case hex SHA-1 of the password; the ciphertext is upper-case hex. The documents' reference code
encodes the plaintext with ``Encoding.GetEncoding("GB2312")``, which .NET maps to code page 936, that
is GBK: names such as 喆, 镕, 珺 or 昇 (outside GB2312 proper) go through the gateways, and go through
here. Python's ``gbk`` codec is that code page.
"""

from __future__ import annotations

import hashlib

from dispatcher.errors import TextEncodingError

# What the gateways call "GB2312": .NET's code page 936.
ENCRYPTED_CHARSET = "gbk"


def des_key(password: str) -> bytes:
    return hashlib.sha1(password.encode("utf-8")).hexdigest().upper()[:8].encode("ascii")


def unencodable_characters(text: str, encoding: str = ENCRYPTED_CHARSET) -> str:
    """The distinct characters of ``text`` that ``encoding`` cannot encode, in order of appearance."""
    bad: dict[str, None] = {}
    for char in text:
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            bad[char] = None
    return "".join(bad)


def encode_encrypted_charset(text: str) -> bytes:
    """``text`` as the encrypted methods carry it (code page 936); ``TextEncodingError`` names what cannot be."""
    try:
        return text.encode(ENCRYPTED_CHARSET)
    except UnicodeEncodeError:
        raise TextEncodingError(unencodable_characters(text)) from None


def des_encrypt(plaintext: str, password: str) -> str:
    # Imported here: pycryptodome loads cffi and a C parser (tens of ms), which every command that merely
    # lists the vendors would pay for at start-up.
    from Crypto.Cipher import DES
    from Crypto.Util.Padding import pad

    key = des_key(password)
    cipher = DES.new(key, DES.MODE_CBC, iv=key)
    return cipher.encrypt(pad(encode_encrypted_charset(plaintext), DES.block_size)).hex().upper()


def des_decrypt(ciphertext_hex: str, password: str) -> str:
    """Inverse of :func:`des_encrypt`; raises ``ValueError`` on anything undecryptable."""
    from Crypto.Cipher import DES
    from Crypto.Util.Padding import unpad

    key = des_key(password)
    cipher = DES.new(key, DES.MODE_CBC, iv=key)
    data = bytes.fromhex(ciphertext_hex)
    return unpad(cipher.decrypt(data), DES.block_size).decode(ENCRYPTED_CHARSET)


def entinfo_password(sn: str, password: str) -> str:
    """Entinfo's ``pwd`` field: MD5(sn + password), 32 upper-case hex characters."""
    return hashlib.md5((sn + password).encode("utf-8")).hexdigest().upper()
