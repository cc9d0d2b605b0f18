"""The gateways' credential cryptography as the simulator reads the vendors' documents.

Written apart from the client library's own reading, so that the cross-check compares two readings of
the documents, not one reading with itself. Only pycryptodome's DES block cipher is
shared; everything around it is spelled out here from the documents' C# reference code:

- WebService API v9.9.6, 云信 API v8.3 and Trigger API v1.8 (``submitInfo``): ``DESCryptoServiceProvider``
  with its defaults (CBC mode, PKCS7 padding); Key and IV are both ``Encoding.ASCII.GetBytes`` of the
  first 8 characters of the password's SHA-1 as 40 upper-case hex digits; the text goes through
  ``Encoding.GetEncoding("GB2312")``, which .NET maps to code page 936 (GBK); each ciphertext byte is
  written ``{0:X2}``.
- Entinfo SDK API (2017): ``pwd`` is ``md5(sn + password)``, 32 upper-case hex characters.
"""

from __future__ import annotations

import hashlib

from Crypto.Cipher import DES

# .NET's Encoding.GetEncoding("GB2312") is code page 936: Python's "gbk" codec.
CODE_PAGE_936 = "gbk"
_BLOCK = 8


def _key_and_iv(password: str) -> bytes:
    sha1_hex = hashlib.sha1(password.encode("utf-8")).hexdigest().upper()
    return sha1_hex[:8].encode("ascii")


def decode_submit_info(submit_info: str, password: str) -> str | None:
    """The plaintext of a ``submitInfo``, or None when it is not hex, not a whole number of DES blocks,
    badly padded for this password, or not code page 936 text (the gateway's "decryption failed")."""
    text = submit_info.strip()
    if not text or len(text) % (2 * _BLOCK):
        return None
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    key = _key_and_iv(password)
    plain = DES.new(key, DES.MODE_CBC, iv=key).decrypt(data)
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        return None
    try:
        return plain[:-pad].decode(CODE_PAGE_936)
    except UnicodeDecodeError:
        return None


def encode_submit_info(plaintext: str, password: str) -> str:
    """The ``submitInfo`` of ``plaintext`` (the simulator's tests build requests with it)."""
    data = plaintext.encode(CODE_PAGE_936)
    pad = _BLOCK - len(data) % _BLOCK
    key = _key_and_iv(password)
    cipher = DES.new(key, DES.MODE_CBC, iv=key).encrypt(data + bytes([pad]) * pad)
    return "".join(f"{byte:02X}" for byte in cipher)


def entinfo_pwd(sn: str, password: str) -> str:
    """Entinfo's ``pwd`` form field: ``md5(sn + password)`` as 32 upper-case hex characters."""
    return hashlib.md5((sn + password).encode("utf-8")).hexdigest().upper()
