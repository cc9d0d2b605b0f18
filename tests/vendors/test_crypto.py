"""DES ``submitInfo`` and Entinfo's MD5 password against the documents' known answers."""

from __future__ import annotations

import hashlib

import pytest

from dispatcher.errors import TextEncodingError
from dispatcher.vendors import crypto

# WebService API v9.9.6 / 云信 API v8.3 (Channel=67) and Trigger API v1.8 section 2.8 (smsType=101&Channel=0), password 123.
WEBSERVICE_PLAIN = "userPass=123&DesNo=18616300000&Msg=你的验证码是:2345【饿了么】&Channel=67"
WEBSERVICE_CIPHER = (
    "9ECD998D9F60F7963E137DBC61734970FEE419418FBD2E1622286696AD70D909BF58BB270916073B0464030D4FC52D4AF06BF9"
    "7B34D7CCB4CA87E2099218499E467074C1711B02A1EBD0A5328DE1DAB1"
)
TRIGGER_PLAIN = "userPass=123&DesNo=18616300000&Msg=你的验证码是:2345【饿了么】&smsType=101&Channel=0"
TRIGGER_CIPHER = (
    "9ECD998D9F60F7963E137DBC61734970FEE419418FBD2E1622286696AD70D909BF58BB270916073B0464030D4FC52D4AF06BF9"
    "7B34D7CCB4D06AD49E87576B30CF629652BD44258CDA49DB959914CE4F951879939D6586AE"
)


def test_given_password_123_then_the_key_is_the_documents_sha1_prefix() -> None:
    assert crypto.des_key("123") == b"40BD0015"


@pytest.mark.parametrize(
    ("plain", "cipher"), [(WEBSERVICE_PLAIN, WEBSERVICE_CIPHER), (TRIGGER_PLAIN, TRIGGER_CIPHER)]
)
def test_given_a_document_plaintext_when_encrypting_then_the_document_ciphertext(
    plain: str, cipher: str
) -> None:
    assert crypto.des_encrypt(plain, "123") == cipher


@pytest.mark.parametrize("plain", [WEBSERVICE_PLAIN, TRIGGER_PLAIN, "userPass=p", "", "a" * 8])
def test_given_any_gb2312_text_when_encrypting_then_decrypting_gives_it_back(plain: str) -> None:
    cipher = crypto.des_encrypt(plain, "another password")
    assert cipher == cipher.upper() and len(cipher) % 16 == 0
    assert crypto.des_decrypt(cipher, "another password") == plain


def test_given_the_wrong_password_when_decrypting_then_value_error() -> None:
    with pytest.raises(ValueError):
        crypto.des_decrypt(WEBSERVICE_CIPHER, "124")


def test_given_an_emoji_and_an_extension_b_hanzi_when_encrypting_then_the_error_names_them() -> None:
    # 🎉 and 𠮷 (U+20BB7, CJK extension B) are outside code page 936; 你 and 镕 are inside.
    with pytest.raises(TextEncodingError) as info:
        crypto.des_encrypt("你好🎉𠮷镕🎉【签名】", "123")
    assert info.value.characters == "🎉𠮷"
    assert "🎉𠮷" in str(info.value)
    assert "123" not in str(info.value)


@pytest.mark.parametrize("name", ["喆", "镕", "珺", "昇"])
def test_given_a_name_gbk_has_but_gb2312_lacks_when_encrypting_then_it_goes_through(name: str) -> None:
    # The documents' Encoding.GetEncoding("GB2312") is .NET's code page 936 (GBK): the gateways take these.
    with pytest.raises(UnicodeEncodeError):
        name.encode("gb2312")
    plain = f"userPass=123&DesNo=13912345678&Msg={name}先生您好【测试】&Channel=0"
    cipher = crypto.des_encrypt(plain, "123")
    assert bytes.fromhex(cipher) and crypto.des_decrypt(cipher, "123") == plain


def test_given_entinfo_credentials_then_pwd_is_upper_md5_of_sn_plus_password() -> None:
    # Known answer from coreutils: printf 'SDK-OFT-010-00001123456' | md5sum (upper-cased).
    expected = "DECE051040E9A5EF9B5C2B930A80D853"
    assert crypto.entinfo_password("SDK-OFT-010-00001", "123456") == expected
    assert crypto.entinfo_password("a", "b") == "187EF4436122D1CC2F40DC2B92F0EBA0"  # printf ab | md5sum
    assert hashlib.md5(b"ab").hexdigest().upper() == "187EF4436122D1CC2F40DC2B92F0EBA0"
