"""Tuspass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">, keyed with
HKDF-SHA256(secret, label "tuspass completion-form v2") — docs/completion-form.md."""
import hashlib
import hmac
import time


def purpose_key(secret: str, label: bytes) -> bytes:
    # HKDF-SHA256 (RFC 5869): empty salt, 32 bytes (one block)
    prk = hmac.new(b"\0" * 32, secret.encode(), hashlib.sha256).digest()
    return hmac.new(prk, label + b"\x01", hashlib.sha256).digest()


def verify_tuspass(body: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
    key = purpose_key(secret, b"tuspass completion-form v2")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = [v.strip() for k, v in parts if k.strip() == "t"]
    sigs = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(ts) != 1 or not ts[0].isdigit() or not sigs:
        return False
    if abs(time.time() - int(ts[0])) > tolerance:
        return False
    expected = hmac.new(key, ts[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)
