#!/usr/bin/env python3
"""Independent re-derivation of pq-vectors.json with Python `cryptography`
(OpenSSL ML-DSA / ML-KEM, AES-SIV, Argon2id) and hashlib (SHA3, SHAKE).

TestCrossCheckPython (go test) runs it when python3 has a cryptography with
ML-DSA and ML-KEM, and skips with a message otherwise; by hand:
python3 crosscheck.py pq-vectors.json
It checks every identity and C2 key from its seed, every signature, every
KEM decapsulation and command key, every AES-SIV ciphertext and the
Argon2id password key, and prints the number of checks.
"""
import hashlib, json, struct, sys
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

v = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "pq-vectors.json"))
H = bytes.fromhex
n = 0

def check(cond, what):
    global n
    if not cond:
        sys.exit("FAIL: " + what)
    n += 1

def shake(label, seed, size):
    return hashlib.shake_256(label.encode() + seed).digest(size)

def siv(key, ts, pt):
    return AESSIV(key + key).encrypt(pt, [struct.pack("<Q", ts)])

def identity(seed):
    d = mldsa.MLDSA65PrivateKey.from_seed_bytes(shake("e4c2/pq/identity/ml-dsa-65/v1", seed, 32))
    k = mlkem.MLKEM768PrivateKey.from_seed_bytes(shake("e4c2/pq/identity/ml-kem-768/v1", seed, 64))
    return d, k

def pub(d, k):
    return d.public_key().public_bytes_raw() + k.public_key().public_bytes_raw()

for e in v["ids"]:
    check(hashlib.sha3_256(e["name"].encode()).digest()[:16] == H(e["id"]), "id " + e["name"])
for e in v["topic_hashes"]:
    check(hashlib.sha3_256(e["topic"].encode()).digest()[:16] == H(e["topic_hash"]), "topic " + e["topic"])
for e in v["identities"]:
    d, k = identity(H(e["seed"]))
    check(pub(d, k) == H(e["public_key"]), "identity public key")
    check(d.public_key().public_bytes_raw() == H(e["signing_public_key"]), "signing key")
for e in v["c2_keys"]:
    check(mldsa.MLDSA65PrivateKey.from_seed_bytes(H(e["seed"])).public_key().public_bytes_raw() == H(e["public_key"]), "c2 key")
for e in v["sk_messages"]:
    check(struct.pack("<Q", e["timestamp"]) + siv(H(e["topic_key"]), e["timestamp"], H(e["plaintext"])) == H(e["protected"]), "sk " + e["description"])
for e in v["pk_messages"]:
    p, ts = H(e["protected"]), e["timestamp"]
    body = struct.pack("<Q", ts) + H(e["signer_id"]) + siv(H(e["topic_key"]), ts, H(e["plaintext"]))
    check(p[:-3309] == body, "pk body " + e["description"])
    d, _ = identity(H(e["signer_seed"]))
    d.public_key().verify(p[-3309:], body, b"e4c2/pq/message-v1")  # raises on failure
    check(d.public_key().public_bytes_raw() == H(e["signer_signing_public_key"]), "pk signer key")
for e in v["commands"]:
    p, ts = H(e["protected"]), e["timestamp"]
    d, k = identity(H(e["client_seed"]))
    check(pub(d, k) == H(e["client_public_key"]), "command client key")
    ct = p[8:8 + 1088]
    check(ct == H(e["kem_ciphertext"]), "kem ciphertext")
    ss = k.decapsulate(ct)
    check(ss == H(e["shared_secret"]), "shared secret " + e["description"])
    key = hashlib.sha3_256(ss + ct).digest()
    check(key == H(e["command_key"]), "command key")
    body = struct.pack("<Q", ts) + ct + siv(key, ts, H(e["command"]))
    check(p[:-3309] == body, "command body " + e["description"])
    c2 = mldsa.MLDSA65PrivateKey.from_seed_bytes(H(e["c2_seed"])).public_key()
    check(c2.public_bytes_raw() == H(e["c2_public_key"]), "c2 public key")
    c2.verify(p[-3309:], body, b"e4c2/pq/command-v1")
for e in v["password_keys"]:
    if not e["valid"]:
        continue
    kdf = Argon2id(salt=b"e4c2/pq/password-v1", length=32, iterations=3, lanes=4, memory_cost=65536)
    key = kdf.derive(e["password"].encode())
    check(key == H(e["key"]), "password key")
    d, k = identity(key)
    check(pub(d, k) == H(e["identity_public_key"]), "password identity")
print(f"{n} checks passed (plus every ML-DSA signature verified)")
