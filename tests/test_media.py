"""The registry media catalogue (data.media), the identity split and ``sample:NAME``."""
import hashlib

import pytest

from expportrait.data import media
from expportrait.errors import UserError


def test_split_is_by_person_disjoint_and_covers_every_media():
    split = media.load_split()
    assert not set(split["train"]) & set(split["validation"])
    people = {m.person for m in media.MEDIA.values()} | set(media.SAMPLE_PERSONS.values())
    assert people == set(split["train"]) | set(split["validation"])
    # the talking validation person and several validation portraits
    assert media.names_of("validation", "video") == ["cap12", "cap13"]
    assert len({media.MEDIA[n].person for n in media.names_of("validation", "image")}) >= 4
    assert media.person_of("obama_clm") == media.person_of("obama") == "obama"   # two packages
    from expportrait.commands.demo import UNSEEN
    assert media.person_of(UNSEEN) in split["validation"]


def test_split_file_with_a_person_on_both_sides_is_one_error(tmp_path):
    bad = tmp_path / "split.json"
    bad.write_text('{"train": ["obama", "franck"], "validation": ["obama"]}')
    with pytest.raises(UserError, match="both train and validation: obama"):
        media.load_split(bad)


def test_unknown_sample_lists_the_choices():
    from expportrait.data.video import read_source
    with pytest.raises(UserError, match="unknown sample 'sample:nobody'.*expportrait media list"):
        read_source("sample:nobody")


def test_missing_npm_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPPORTRAIT_HOME", str(tmp_path))
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="needs npm"):
        media.fetch("cap12")
    assert not list((tmp_path / "media").glob("*.mp4"))


def test_fetch_checks_the_checksum_and_repairs_a_damaged_copy():
    """face-recognition's sdist comes from PyPI (3 MB, cached after the first run)."""
    path = media.fetch("obama")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == media.MEDIA["obama"].sha256
    path.write_bytes(b"damaged")
    assert media.fetch("obama").read_bytes()[:2] == b"\xff\xd8"                # a JPEG again
    from expportrait.data.video import read_source
    assert read_source("sample:obama").frames.shape == (1, 1137, 910, 3)
