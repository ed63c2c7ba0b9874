import pytest

from bot.store.crypto import SecretKeyError, TokenCipher, generate_key


def test_round_trip_hides_the_plaintext():
    cipher = TokenCipher([generate_key()])
    ciphertext = cipher.encrypt("glpat-secret-token")
    assert "glpat-secret-token" not in ciphertext
    assert cipher.decrypt(ciphertext) == "glpat-secret-token"


def test_key_rotation_keeps_old_tokens_readable_and_rotate_moves_them_to_the_new_key():
    old, new = generate_key(), generate_key()
    stored = TokenCipher([old]).encrypt("glpat-secret-token")
    during_rotation = TokenCipher([new, old])
    assert during_rotation.decrypt(stored) == "glpat-secret-token"
    rotated = during_rotation.rotate(stored)
    assert TokenCipher([new]).decrypt(rotated) == "glpat-secret-token"
    with pytest.raises(SecretKeyError):
        TokenCipher([new]).decrypt(stored)


def test_a_wrong_key_gives_a_clear_error_without_the_token():
    stored = TokenCipher([generate_key()]).encrypt("glpat-secret-token")
    with pytest.raises(SecretKeyError) as error:
        TokenCipher([generate_key()]).decrypt(stored)
    assert "MIRRORBOT_SECRET_KEY" in str(error.value)
    assert "glpat" not in str(error.value)


def test_no_key_is_refused():
    with pytest.raises(ValueError, match="MIRRORBOT_SECRET_KEY"):
        TokenCipher([])
