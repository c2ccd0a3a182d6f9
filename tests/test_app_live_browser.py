"""`expportrait app`'s Live tab as a person uses it, in a real headless Chromium whose camera is
Chromium's fake device playing the bundled carphone clip (a .y4m written here): open the tab,
keep the bundled astronaut as the source, start the webcam stream, and check the streamed
results: the astronaut (not the driver), moving in the face, at a measured rate (printed: results
per second in the browser and the server's ms per frame). Two browsers at once each get their own
source's results; a source without a face gives one clear error; stopping the server (SIGTERM)
removes its temporary results folder and keeps a given --output-dir. Skipped only outside CI when
no browser is installed."""
import base64
import io
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import browser_or_skip, write_tiny_checkpoint

CHROMEDRIVER, CHROMIUM, webdriver = browser_or_skip()
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WATCH = """
const root = document.getElementById('live_result');
window.__times = []; window.__last = null;
new MutationObserver(() => {
  const img = root.querySelector('img');
  if (img && img.src !== window.__last) { window.__last = img.src; window.__times.push(performance.now()); }
}).observe(root, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root, *extra):
    """The app on a free port with the tiny checkpoint -> (url, process, its log path)."""
    ckpt = root / "ckpt"
    if not ckpt.exists():
        write_tiny_checkpoint(ckpt)
    port, log_path = _free_port(), root / f"server-{len(list(root.glob('server-*')))}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "expportrait.cli", "app", "--checkpoint", str(ckpt),
                                 "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1",
                                     "GRADIO_ANALYTICS_ENABLED": "False"})
    return f"http://127.0.0.1:{port}/", proc, log_path


def _wait_up(url, proc, log_path, timeout=180):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.5)
    proc.kill()
    pytest.fail("app did not start: " + log_path.read_text()[-2000:])


def _stop(proc):
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live_app")
    url, proc, log_path = _start(root)
    _wait_up(url, proc, log_path)
    yield url, log_path
    _stop(proc)


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """The carphone clip as a .y4m for Chromium's fake camera -> (path, its frames (F, H, W, 3))."""
    import cv2

    from expportrait.data.video import read_source
    from expportrait.paths import carphone_path
    video = read_source(carphone_path())
    frames = video.frames                                   # (120, 144, 176, 3) uint8 RGB
    path = tmp_path_factory.mktemp("camera") / "carphone.y4m"
    h, w = frames.shape[1:3]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30000:1001 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:                                # Y, then U and V at half size (4:2:0)
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path, frames


def _browser(clip):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1400", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture
def browsers(camera_clip):
    """browsers() -> a new Chromium with the fake camera; all quit after the test (streams end)."""
    made = []
    yield lambda: made.append(_browser(camera_clip[0])) or made[-1]
    for driver in made:
        driver.quit()


def _open_live(driver, url, source=None):
    """Open the app's Live tab; ``source``: upload it in place of the bundled astronaut."""
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: _click(d, "button[role=tab][data-tab-id=live]"))
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "live_faces_line").text.strip())
    if source is not None:                                  # clear (the line empties), upload
        driver.find_element(By.CSS_SELECTOR, "#live_source button[aria-label='Clear']").click()
        WebDriverWait(driver, 30).until(lambda d: not d.find_element(By.ID, "live_faces_line").text.strip())
        driver.find_element(By.CSS_SELECTOR, "#live_source input[type=file]").send_keys(str(source))
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "live_faces_line").text.strip())


def _click(driver, css) -> bool:
    """Click the element (False while it is missing or covered, e.g. by a loading overlay)."""
    from selenium.common.exceptions import WebDriverException
    try:
        driver.find_element(By.CSS_SELECTOR, css).click()
        return True
    except WebDriverException:
        return False


def _start_camera(driver):
    """Grant the (fake) webcam, press Record; results are watched from then on."""
    driver.find_element(By.CSS_SELECTOR, "#live_camera div[title='grant webcam access'] button").click()
    record = "#live_camera button.capture-button"
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, record))
    driver.execute_script(WATCH)
    driver.find_element(By.CSS_SELECTOR, record).click()


def _results(driver) -> int:
    return driver.execute_script("return window.__times.length")


def _frame(driver) -> np.ndarray:
    """The result shown now, decoded from its data URL -> (h, w, 3) uint8 RGB."""
    from PIL import Image
    src = driver.execute_script("const i = document.querySelector('#live_result img'); return i && i.src")
    assert src and src.startswith("data:image/jpeg;base64,"), str(src)[:80]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def _tracking(driver, timeout=90):
    """Wait until the server reports frames with a face tracked -> its line."""
    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(
        lambda d: (t := d.find_element(By.ID, "live_fps").text) and "fps" in t and "no face" not in t and t)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two pictures' gray values (b resized to a's size)."""
    import cv2
    b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.corrcoef(a.mean(-1).ravel(), b.mean(-1).ravel())[0, 1])


def _source_256(image: np.ndarray) -> np.ndarray:
    from expportrait.live.session import fit_size
    return fit_size(image, 256)


def test_webcam_drives_the_source_and_results_stream_back(server, browsers, camera_clip):
    from skimage import data

    from expportrait.detection.faces import find_faces
    url, _ = server
    driver = browsers()
    _open_live(driver, url)
    assert "1 face found" in driver.find_element(By.ID, "live_faces_line").text   # the astronaut, numbered
    assert driver.find_elements(By.CSS_SELECTOR, "#live_source_faces img")
    _start_camera(driver)
    _tracking(driver)
    # the rate: results the browser received over a few seconds, and the server's own line
    n0, t0 = _results(driver), time.perf_counter()
    shots = []
    while time.perf_counter() - t0 < 6:                     # a result every 0.5 s, each a new one
        n = _results(driver)
        shots.append(_frame(driver))
        time.sleep(0.5)
        WebDriverWait(driver, 30, poll_frequency=0.1).until(lambda d, n=n: _results(d) > n)
    fps_browser = (_results(driver) - n0) / (time.perf_counter() - t0)
    line = driver.find_element(By.ID, "live_fps").text
    fps_server, ms_server = (float(x) for x in re.search(r"([\d.]+) fps, (\d+) ms", line).groups())
    print(f"\nlive round trip (headless Chromium, fake camera 176x144, size 256): "
          f"{fps_browser:.1f} results/s in the browser; server: {line}")
    assert fps_browser > 0.5 and fps_server > 0.5 and ms_server > 0

    source = _source_256(data.astronaut())                  # (256, 256, 3): what the session drives
    assert all(s.shape == source.shape for s in shots)
    # (a) the astronaut, not the driver
    for s in shots:
        assert _corr(s, source) > 0.8, _corr(s, source)
        assert _corr(s, source) > _corr(s, camera_clip[1][0]) + 0.4
    # (b) it moves: consecutive results differ in the face, more than in the still background
    x0, y0, x1, y1 = (int(round(v)) for v in find_faces(source)[0].box)
    pairs = list(zip(shots, shots[1:]))
    face = [np.abs(a[y0:y1, x0:x1].astype(float) - b[y0:y1, x0:x1]).mean() for a, b in pairs]
    corner = [np.abs(a[:40, :40].astype(float) - b[:40, :40]).mean() for a, b in pairs]
    print(f"face change per result {np.round(face, 1)}, background corner {np.round(corner, 1)}")
    assert np.median(face) > 1.0 and np.median(face) > 2 * np.median(corner) + 0.5, (face, corner)
    assert not driver.find_elements(By.CSS_SELECTOR, ".toast-body")


def test_two_browsers_at_once_each_see_their_own_source(server, browsers, camera_clip, tmp_path):
    """Browser A keeps the astronaut, B uploads the carphone man's first frame; both stream at
    the same time, both keep getting results, each shows its own source only."""
    from PIL import Image
    from skimage import data
    url, _ = server
    man = tmp_path / "man.png"
    Image.fromarray(camera_clip[1][0]).save(man)
    a, b = browsers(), browsers()
    _open_live(a, url)
    _open_live(b, url, source=man)
    assert "1 face found" in b.find_element(By.ID, "live_faces_line").text
    _start_camera(a)
    _start_camera(b)
    _tracking(a)
    _tracking(b)
    na, nb = _results(a), _results(b)
    time.sleep(4)
    assert _results(a) > na and _results(b) > nb            # both streams run together
    astronaut, first = _source_256(data.astronaut()), _source_256(camera_clip[1][0])
    for _ in range(3):
        fa, fb = _frame(a), _frame(b)
        print(f"A ~ astronaut {_corr(fa, astronaut):.2f}, ~ man {_corr(fa, first):.2f}; "
              f"B ~ man {_corr(fb, first):.2f}, ~ astronaut {_corr(fb, astronaut):.2f}")
        assert fa.shape == astronaut.shape and fb.shape == first.shape    # (256, 256) and (210, 256)
        assert _corr(fa, astronaut) > 0.8 and _corr(fa, first) < 0.5, (_corr(fa, astronaut), _corr(fa, first))
        assert _corr(fb, first) > 0.6 and _corr(fb, astronaut) < 0.5, (_corr(fb, first), _corr(fb, astronaut))
        time.sleep(0.5)


def _errors(driver) -> list[str]:
    """The error lines of the toasts shown."""
    return [ln for e in driver.find_elements(By.CSS_SELECTOR, ".toast-body")
            for ln in e.text.splitlines()[1:] if ln.strip() not in ("", "×") and not ln.startswith("(")]


def test_bad_sources_give_one_clear_error_each_and_the_stream_recovers(server, browsers, tmp_path):
    """A source without a face, then no source: one error line each (not one per frame); the
    bundled sample picked while the camera streams: results come."""
    from PIL import Image
    url, _ = server
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(blank)
    driver = browsers()
    _open_live(driver, url, source=blank)
    assert "no face found" in driver.find_element(By.ID, "live_faces_line").text
    _start_camera(driver)
    WebDriverWait(driver, 60, poll_frequency=0.3).until(lambda d: _errors(d))
    time.sleep(2)                                           # frames go on arriving meanwhile
    assert _errors(driver) == ["source: no face found in any frame"], _errors(driver)
    assert "no face found" in driver.find_element(By.ID, "live_fps").text
    driver.find_element(By.CSS_SELECTOR, "#live_source button[aria-label='Clear']").click()
    WebDriverWait(driver, 30, poll_frequency=0.3).until(lambda d: len(_errors(d)) == 2)
    time.sleep(2)
    assert _errors(driver)[1:] == ["upload a source portrait first (or pick the bundled sample)"]
    assert _results(driver) == 0
    driver.find_element(By.CSS_SELECTOR, "#live_examples button, #live_examples td").click()
    _tracking(driver)
    assert _results(driver) > 0 and len(_errors(driver)) == 2
    assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text


def test_stopping_the_server_removes_its_temporary_results(tmp_path):
    """SIGTERM (``proc.terminate()``): the temp folder of a server without --output-dir is gone
    (the one named on its startup line), a given --output-dir is kept."""
    kept = tmp_path / "kept"
    temp_url, temp_proc, temp_log = _start(tmp_path)
    kept_url, kept_proc, kept_log = _start(tmp_path, "--output-dir", str(kept))
    _wait_up(temp_url, temp_proc, temp_log)
    _wait_up(kept_url, kept_proc, kept_log)
    folder = re.search(r"\(results in (.+)\)", temp_log.read_text()).group(1)
    assert os.path.isdir(folder) and os.listdir(folder)      # the bundled sample is written there
    assert _stop(temp_proc) == 0 and _stop(kept_proc) == 0   # SIGTERM: a clean stop, not killed
    assert not os.path.exists(folder), os.listdir(folder)
    assert (kept / "astronaut.png").exists()
