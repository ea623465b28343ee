"""The tests hash passwords with cheap argon2 parameters (tests/conftest.py
CHEAP_HASHING); these prove that this changes nothing for a real installation
and that hashes of either kind verify under the other."""

from __future__ import annotations

from argon2 import extract_parameters

from jutella.accounts.passwords import hash_password, needs_rehash, verify_password
from jutella.settings import Settings

from tests.conftest import CHEAP_HASHING

PASSWORD = "correct horse battery staple"


def test_a_real_installation_hashes_with_the_standard_parameters(tmp_path):
    production = Settings(data_dir=tmp_path)  # what `jutella serve` builds without the setting
    assert production.password_hash_profile == "standard"
    params = extract_parameters(hash_password(production, PASSWORD))
    assert (params.type.name, params.time_cost, params.memory_cost, params.parallelism) == ("ID", 3, 65536, 4)


def test_cheap_hashes_verify_and_a_standard_server_upgrades_them(tmp_path):
    cheap, standard = Settings(data_dir=tmp_path, **CHEAP_HASHING), Settings(data_dir=tmp_path)
    fast = hash_password(cheap, PASSWORD)
    params = extract_parameters(fast)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 8, 1)
    assert verify_password(cheap, fast, PASSWORD) and verify_password(standard, fast, PASSWORD)
    assert not verify_password(cheap, fast, PASSWORD + "!")
    assert not verify_password(cheap, None, PASSWORD)  # no account: the cheap dummy hash, still refused
    assert needs_rehash(standard, fast) and not needs_rehash(cheap, fast)
    slow = hash_password(standard, PASSWORD)
    assert verify_password(cheap, slow, PASSWORD) and not needs_rehash(standard, slow)


def test_the_policy_refuses_a_repeated_pattern_and_the_persons_own_name_or_email():
    import pytest

    from jutella.accounts.errors import AccountError
    from jutella.accounts.passwords import check_policy

    def refusal(password: str, **who: str) -> str | None:
        try:
            check_policy(password, **who)
        except AccountError as exc:
            return exc.code
        return None

    for repeated in ("abcabcabcabc", "xyzwxyzwxyzw", "Kesä2024Kesä2024", "ABCabcABCabcA", "moi!moi!moi!m"):
        assert refusal(repeated) == "password_repeated", repeated
    who = {"email": "aino.virtanen@example.org", "name": "Aino Virtanen"}
    for personal in ("virtanen is the best", "AINO2024 summer sun", "x-aino.virtanen-x", "my aino password"):
        assert refusal(personal, **who) == "password_personal", personal
    # ordinary passphrases pass, also with the person known; short name parts ("Li") are not looked for
    for fine in (PASSWORD, "correcthorse" * 2, "abcdefghijka", "planning the litany"):
        assert refusal(fine, email="li@example.org", name="Li Ann") is None, fine
    assert refusal(PASSWORD, **who) is None
    with pytest.raises(AccountError):
        check_policy("short")
