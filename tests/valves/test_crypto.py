import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError

from valves.crypto import SecretsDecryptError, decrypt_json, encrypt_json, reencrypt


def test_round_trip_returns_the_same_dict_and_hides_the_plaintext():
    token = encrypt_json({"OPENAI_API_KEY": "sk-live-123", "n": 1})
    assert "sk-live-123" not in token
    assert decrypt_json(token) == {"OPENAI_API_KEY": "sk-live-123", "n": 1}


def test_a_passphrase_that_is_not_a_fernet_key_is_stretched_into_one(settings):
    settings.FNPLATFORM_SECRETS_KEY = "correct horse battery staple"
    assert decrypt_json(encrypt_json({"a": "b"})) == {"a": "b"}


def test_rotation_decrypts_with_old_keys_and_encrypts_with_the_newest(settings):
    old, new = Fernet.generate_key().decode(), "a new passphrase"
    settings.FNPLATFORM_SECRETS_KEY = old
    old_token = encrypt_json({"k": "v"})

    settings.FNPLATFORM_SECRETS_KEY = f"{new}, {old}"
    assert decrypt_json(old_token) == {"k": "v"}
    new_token = encrypt_json({"k": "v2"})
    rotated = reencrypt(old_token)

    settings.FNPLATFORM_SECRETS_KEY = new
    assert decrypt_json(new_token) == {"k": "v2"}
    assert decrypt_json(rotated) == {"k": "v"}
    with pytest.raises(SecretsDecryptError):
        decrypt_json(old_token)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not a token", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(Fernet(Fernet.generate_key()).encrypt(b"{}").decode(), id="other-key"),
    ],
)
def test_a_token_no_key_can_decrypt_raises_a_clear_validation_error(token):
    with pytest.raises(ValidationError) as info:
        decrypt_json(token)
    assert isinstance(info.value, SecretsDecryptError)
    assert info.value.code == "secrets_undecryptable"
    assert "FNPLATFORM_SECRETS_KEY" in info.value.messages[0]


def test_a_token_that_does_not_hold_a_dict_is_rejected(settings):
    fernet = Fernet(settings.FNPLATFORM_SECRETS_KEY.encode())
    with pytest.raises(SecretsDecryptError):
        decrypt_json(fernet.encrypt(b"[1, 2]").decode())


def test_an_empty_key_setting_is_a_configuration_error(settings):
    settings.FNPLATFORM_SECRETS_KEY = " , "
    with pytest.raises(ImproperlyConfigured):
        encrypt_json({})
