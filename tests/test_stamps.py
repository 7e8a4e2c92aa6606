"""Resume stamps: the model's SHA-256 (hashed once per file version) and input versions."""

import hashlib
import os

from matte_sdk import stamps


def test_model_hash_follows_the_file(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"first")
    assert stamps.model_sha256(model) == hashlib.sha256(b"first").hexdigest()
    model.write_bytes(b"second!")
    assert stamps.model_sha256(model) == hashlib.sha256(b"second!").hexdigest()  # not the cached one


def test_an_input_rewritten_has_a_new_version(tmp_path):
    plate = tmp_path / "p.exr"
    plate.write_bytes(b"abc")
    before = stamps.version(plate)
    os.utime(plate, ns=(1, 1))
    assert stamps.version(plate) != before and stamps.version(plate) == "3:1"
    one = stamps.make("sha", {"tile": 64}, {"plate": "3:1"})
    assert (
        one == stamps.make("sha", {"tile": 64}, {"plate": "3:1"}) != stamps.make("sha", {"tile": 0}, {"plate": "3:1"})
    )
