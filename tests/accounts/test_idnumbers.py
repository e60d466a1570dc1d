"""ID numbers: GB 11643 validation, encryption with rotation, keyed hash, masking."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet

from server.accounts import idnumbers
from server.accounts.idnumbers import (
    check_digit,
    decrypt_id_number,
    id_number_hash,
    mask_id_number,
    protect_id_number,
    rotate_id_number,
    validate_id_number,
)
from server.config import from_env
from server.errors import ValidationFailed
from tests.conftest import SENSITIVE

VALID = "371102199001011232"  # 日照市东港区, 1990-01-01
VALID_X = "11010519491231002X"  # GB 11643's own example, check character X
OLD_COUNTY = "440524188001010014"  # the standard's other example: 潮阳县 is gone, 汕头市 is not
CITY_ONLY = "371199200002290012"  # an unknown county of 日照市, born on a leap day
SENSITIVE.update({VALID, VALID_X, OLD_COUNTY, CITY_ONLY})


def _fails(raw: str, field: str = "id_number", **kw) -> str:
    with pytest.raises(ValidationFailed) as info:
        validate_id_number(raw, field=field, **kw)
    messages = info.value.errors[field]
    assert all(raw not in m for m in messages)  # the number is never echoed
    return messages[0]


def test_check_digit_examples() -> None:
    assert check_digit(VALID_X[:17]) == "X"
    assert check_digit(OLD_COUNTY[:17]) == "4"


@pytest.mark.parametrize("raw", [VALID, VALID_X, OLD_COUNTY, CITY_ONLY])
def test_valid_numbers(raw: str) -> None:
    assert validate_id_number(raw) == raw


def test_input_normalised() -> None:
    assert validate_id_number(VALID_X.lower()) == VALID_X
    assert validate_id_number(" 110105 19491231 002x ") == VALID_X
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in VALID)
    assert validate_id_number(fullwidth) == VALID


@pytest.mark.parametrize(
    "raw,fragment",
    [
        ("37110219900101123", "18"),
        ("3711021990010112321", "18"),
        ("37110219900101123A", "格式"),
        ("3711021990O101123X", "格式"),
        ("371102199002301234", "出生日期"),  # 30 February
        ("371102187901011234", "出生日期"),  # before 1880
        ("371102199001011233", "校验"),
        ("379901199001011237", "地区"),  # neither county nor city exists
    ],
)
def test_invalid_numbers(raw: str, fragment: str) -> None:
    assert fragment in _fails(raw)


def test_future_birth_date_refused() -> None:
    tomorrow = dt.date(2031, 5, 2)
    first17 = f"371102{tomorrow:%Y%m%d}123"
    raw = first17 + check_digit(first17)
    assert "出生日期" in _fails(raw, today=dt.date(2031, 5, 1))
    assert validate_id_number(raw, today=tomorrow) == raw


def test_field_name_used() -> None:
    _fails("123", field="subject_id_number")


def test_region_added_to_table_accepted(session) -> None:
    from server.divisions.models import Division

    first17 = "37990119900101123"
    raw = first17 + check_digit(first17)
    _fails(raw, session=session)
    session.add(Division(code="3799", name="测试市", level="city", parent_code="37"))
    session.flush()
    assert validate_id_number(raw, session=session) == raw


def test_mask() -> None:
    assert mask_id_number(VALID) == "371102********1232"
    assert mask_id_number(VALID_X) == "110105********002X"
    assert len(mask_id_number(VALID)) == 18


def test_protect_round_trip(app) -> None:
    with app.app_context():
        enc, digest, masked = protect_id_number(VALID)
        assert VALID.encode() not in enc
        assert decrypt_id_number(enc) == VALID
        assert digest == id_number_hash(VALID) == id_number_hash(VALID.lower())
        assert len(digest) == 64 and VALID not in digest
        assert masked == "371102********1232"
        # Encryption is randomised; the hash is not.
        assert protect_id_number(VALID)[0] != enc
        assert protect_id_number(VALID)[1] == digest


def test_hash_is_keyed(app) -> None:
    with app.app_context():
        default = id_number_hash(VALID)
        app.config["ID_HASH_KEY"] = "a-configured-hash-key"
        keyed = id_number_hash(VALID)
        app.config["ID_HASH_KEY"] = "another-hash-key"
        assert len({default, keyed, id_number_hash(VALID)}) == 3


def test_key_rotation(app) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with app.app_context():
        app.config["ID_ENCRYPTION_KEYS"] = old
        enc_old = protect_id_number(VALID)[0]
        hash_before = id_number_hash(VALID)
        # A new key is prepended: old ciphertexts still decrypt, new ones use the new key.
        app.config["ID_ENCRYPTION_KEYS"] = f"{new}, {old}"
        assert decrypt_id_number(enc_old) == VALID
        rotated = rotate_id_number(enc_old)
        assert id_number_hash(VALID) == hash_before  # look-ups survive rotation
        # Once everything is rotated the old key can go.
        app.config["ID_ENCRYPTION_KEYS"] = new
        assert decrypt_id_number(rotated) == VALID
        with pytest.raises(ValueError):
            decrypt_id_number(enc_old)


def test_development_key_derived_from_secret(app) -> None:
    with app.app_context():
        app.config["ID_ENCRYPTION_KEYS"] = ""
        enc = protect_id_number(VALID)[0]
        assert decrypt_id_number(enc) == VALID
        app.config["SECRET_KEY"] = "a-different-secret-key-of-sufficient-length"
        with pytest.raises(ValueError):
            decrypt_id_number(enc)


def test_production_requires_keys() -> None:
    base = {"AIDLINE_ENV": "production", "SECRET_KEY": "s" * 40}
    with pytest.raises(RuntimeError, match="ID_ENCRYPTION_KEYS"):
        from_env(base | {"ID_HASH_KEY": "h"})
    with pytest.raises(RuntimeError, match="ID_HASH_KEY"):
        from_env(base | {"ID_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    cfg = from_env(base | {"ID_HASH_KEY": "h", "ID_ENCRYPTION_KEYS": "k"})
    assert cfg["ID_HASH_KEY"] == "h"


def test_known_regions_cached() -> None:
    regions = idnumbers._known_regions()
    assert "371102" in regions and "3711" in regions and "371102004" not in regions
