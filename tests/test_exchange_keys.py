"""Ed25519 keys: generation, loading, signing, verification and key rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from case_workflow.errors import InvalidInput
from case_workflow.exchange import (
    KeyRing,
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_envelope,
    verify_envelope,
)
from tests.test_exchange_envelope import make_envelope


def test_generate_writes_private_key_readable_by_owner(tmp_path: Path) -> None:
    private, public = generate_key_pair(tmp_path, "mediator")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert load_private_key(private).public_key() == load_public_key(public)


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    generate_key_pair(tmp_path, "mediator")
    with pytest.raises(InvalidInput, match="already exists"):
        generate_key_pair(tmp_path, "mediator")


def test_load_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "broken.key"
    path.write_text("not a key")
    with pytest.raises(InvalidInput, match="cannot load private key"):
        load_private_key(path)
    with pytest.raises(InvalidInput, match="cannot load public key"):
        load_public_key(path)


def test_signature_verifies_with_signer_key() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_envelope(make_envelope(), key)
    assert verify_envelope(signed, [key.public_key()])


def test_tampered_payload_fails_verification() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_envelope(make_envelope(), key)
    tampered = signed.model_copy(update={"payload": {"respondent": "someone-else"}})
    assert not verify_envelope(tampered, [key.public_key()])


def test_wrong_key_fails_verification() -> None:
    signed = sign_envelope(make_envelope(), Ed25519PrivateKey.generate())
    assert not verify_envelope(signed, [Ed25519PrivateKey.generate().public_key()])


def test_unsigned_or_garbled_signature_fails() -> None:
    key = Ed25519PrivateKey.generate()
    assert not verify_envelope(make_envelope(), [key.public_key()])
    assert not verify_envelope(make_envelope(signature="%%%"), [key.public_key()])


def test_key_ring_accepts_old_and_new_key(tmp_path: Path) -> None:
    old_private, old_public = generate_key_pair(tmp_path / "old", "mediator")
    new_private, new_public = generate_key_pair(tmp_path / "new", "mediator")
    _, own = generate_key_pair(tmp_path, "al-omrane")
    ring = KeyRing.from_files(
        "al-omrane", tmp_path / "al-omrane.key", {"mediator": [old_public, new_public]}
    )
    for private in (old_private, new_private):
        signed = sign_envelope(make_envelope(), load_private_key(private))
        assert ring.verify(signed)
    assert ring.knows("mediator")
    assert not ring.knows("someone-else")
    assert own.exists()
