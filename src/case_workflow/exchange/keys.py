"""Ed25519 keys of the institutions: generating, loading, signing and verifying envelopes.

Each institution signs with its own private key and keeps the public keys of its peers. A peer
may have several public keys at once, so a key can be replaced without a window where messages
signed with either key are rejected.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from case_workflow.errors import InvalidInput
from case_workflow.exchange.envelope import Envelope, canonical_bytes

__all__ = [
    "KeyRing",
    "generate_key_pair",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "sign_envelope",
    "verify_envelope",
]


def generate_key_pair(folder: Path, institution: str) -> tuple[Path, Path]:
    """Write a new key pair as ``INSTITUTION.key`` (PKCS #8, mode 0600) and ``INSTITUTION.pub``.

    Return both paths. Raise InvalidInput rather than overwrite an existing private key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / f"{institution}.key"
    public_path = folder / f"{institution}.pub"
    if private_path.exists():
        raise InvalidInput(
            f"private key {private_path} already exists; remove it first or choose another folder"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(pem)
    public_path.write_bytes(public_key_pem(key.public_key()))
    return private_path, public_path


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path, password: bytes | None = None) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM file; raise InvalidInput if it is not one."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=password)
    except (OSError, ValueError, TypeError) as error:
        raise InvalidInput(f"cannot load private key {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(
            f"private key {path} is a {type(key).__name__}, not Ed25519; "
            "generate one with generate_key_pair()"
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key from a PEM file; raise InvalidInput if it is not one."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot load public key {path}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"public key {path} is a {type(key).__name__}, not Ed25519")
    return key


def sign_envelope(envelope: Envelope, key: Ed25519PrivateKey) -> Envelope:
    """Return a copy of ``envelope`` carrying the signature of its canonical bytes."""
    signature = key.sign(canonical_bytes(envelope))
    return envelope.model_copy(update={"signature": base64.b64encode(signature).decode()})


def verify_envelope(envelope: Envelope, keys: Sequence[Ed25519PublicKey]) -> bool:
    """Return True when one of ``keys`` verifies the envelope's signature."""
    if envelope.signature is None:
        return False
    try:
        signature = base64.b64decode(envelope.signature, validate=True)
    except binascii.Error:
        return False
    data = canonical_bytes(envelope)
    for key in keys:
        try:
            key.verify(signature, data)
        except InvalidSignature:
            continue
        return True
    return False


@dataclass(frozen=True)
class KeyRing:
    """An institution's own private key and the public keys of the peers it trusts."""

    institution: str
    private_key: Ed25519PrivateKey = field(repr=False)
    peers: Mapping[str, Sequence[Ed25519PublicKey]] = field(default_factory=dict)

    @classmethod
    def from_files(
        cls,
        institution: str,
        private_key: Path,
        peers: Mapping[str, Path | Sequence[Path]],
        *,
        password: bytes | None = None,
    ) -> KeyRing:
        """Load the own private key and each peer's public key file(s)."""
        loaded: dict[str, list[Ed25519PublicKey]] = {}
        for peer, paths in peers.items():
            listed = [paths] if isinstance(paths, Path) else list(paths)
            loaded[peer] = [load_public_key(path) for path in listed]
        return cls(institution, load_private_key(private_key, password), loaded)

    def sign(self, envelope: Envelope) -> Envelope:
        return sign_envelope(envelope, self.private_key)

    def knows(self, institution: str) -> bool:
        return bool(self.peers.get(institution))

    def verify(self, envelope: Envelope) -> bool:
        """Return True when a public key of the envelope's sender verifies its signature."""
        return verify_envelope(envelope, self.peers.get(envelope.sender, ()))
