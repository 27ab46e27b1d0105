"""The model card names the bundled file by its SHA-256: the card and the file change together."""

import hashlib
import os
import re

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def test_the_card_gives_the_bundled_files_sha256_and_size():
    with open(os.path.join(MODELS, "README.md")) as f:
        card = f.read()
    with open(os.path.join(MODELS, "default.safetensors"), "rb") as f:
        data = f.read()
    (row,) = [line for line in card.splitlines() if line.startswith("| file |")]
    assert re.search(r"SHA-256 `([0-9a-f]{64})`", row).group(1) == hashlib.sha256(data).hexdigest()
    assert f"{len(data):,} bytes" in row
