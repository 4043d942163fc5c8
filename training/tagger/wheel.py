"""The ``musicnn`` 0.1.0 wheel from PyPI: where its checkpoint is and what it is.

The wheel is the weights' only source, fetched by ``pip download --no-deps musicnn==0.1.0``
(``make tagger-wheel``), never at run time. Its sha256 is pinned: converting from any other file
is refused, so the shipped tensors always trace to the same published bytes.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.tagger.tensorbundle import read_checkpoint

PACKAGE, VERSION = "musicnn", "0.1.0"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
LICENCE = "ISC (Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019)"
DEFAULT_WHEEL = Path(
    os.environ.get("GENRE_MUSICNN_WHEEL", Path.home() / ".cache/genre-serve/musicnn" / WHEEL_NAME)
)
# The 50 tags of the MSD models, in output order (musicnn/configuration.py, MSD_LABELS).
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip


class WheelError(ValueError):
    """Not the published musicnn wheel, or a model it does not hold."""


@dataclass(frozen=True)
class TaggerSource:
    """One checkpoint of the wheel, read: its variables and where they came from."""

    variables: dict[str, Any]
    provenance: dict[str, Any]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tagger(wheel: Path, model: str, unpack_to: Path) -> TaggerSource:
    """The ``model`` checkpoint (``MSD_musicnn``) of the pinned wheel, unpacked under
    ``unpack_to`` and read without TensorFlow."""
    if not wheel.is_file():
        raise WheelError(
            f"{wheel}: no musicnn wheel; fetch it with `make tagger-wheel` "
            f"(pip download --no-deps {PACKAGE}=={VERSION})"
        )
    digest = sha256_bytes(wheel.read_bytes())
    if digest != WHEEL_SHA256:
        raise WheelError(f"{wheel}: sha256 {digest[:12]}… is not the published {VERSION} wheel")
    members = [f"{PACKAGE}/{model}/{name}" for name in (".index", ".data-00000-of-00001")]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        if not all(member in names for member in members):
            raise WheelError(f"{wheel}: holds no checkpoint {model!r}")
        licence = archive.read(f"{PACKAGE}-{VERSION}.dist-info/LICENSE.md")
        files = {member: archive.read(member) for member in members}
    for member, content in files.items():
        target = unpack_to / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    provenance = {
        "package": PACKAGE,
        "version": VERSION,
        "source": f"https://pypi.org/project/{PACKAGE}/{VERSION}/",
        "wheel": WHEEL_NAME,
        "wheel_sha256": WHEEL_SHA256,
        "checkpoint": model,
        "source_files_sha256": {member: sha256_bytes(data) for member, data in files.items()},
        "licence": LICENCE,
        "licence_sha256": sha256_bytes(licence),
        "citation": "Pons & Serra, musicnn: pre-trained convolutional neural networks for "
        "music audio tagging, ISMIR 2019 late-breaking demo",
    }
    variables = read_checkpoint(f"{unpack_to / PACKAGE / model}/")
    return TaggerSource(variables=variables, provenance=provenance)
