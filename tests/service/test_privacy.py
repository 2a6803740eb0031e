"""Privacy: people, faces and plates blurred in every evidence image that leaves the service (signed links, the
reviewers' evidence route, exports), the original for admins only, blurred copies made once, owner-only, and
removed with their original; the Haar cascade evaluator on real photos."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import json
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from detector.types import Detections, Frame
from service.app import create_app
from service.cases import evidence_boxes
from service.evidence import save_evidence
from service.privacy import (FACE_CASCADE, PLATE_CASCADE, HaarCascade, PrivacyError, PrivacyPolicy,
                             PrivacyUnavailableError, PublicCopies,
                             blur_regions, crop_origin_xy, default_detectors, expand_boxes, find_cascade,
                             group_rectangles, public_copy_paths, redact_image, remove_public_copies,
                             stored_person_boxes)
from service.retention import sweep_evidence
from service.settings import PrivacySettings, RetentionSettings, Settings
from tests.service.test_api import ADMIN, ALICE, KEYS, make_config
from tests.service.test_cases import T0, make_camera, make_origin, make_violation

SHARED = Path(os.environ.get("STREETWATCH_SHARED", Path(__file__).resolve().parents[3] / "shared"))
BICYCLES = SHARED / "data" / "bicycles-2000"
NO_DETECTORS: dict = {}


def texture(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A sharp random texture (every pixel differs from its neighbours), so any blur shows."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: high for fine detail, near 0 once blurred."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def person(xyxy, track_id: int = 1) -> dict:
    return {"xyxy": list(xyxy), "class_name": "person", "track_id": track_id}


def bike(xyxy, track_id: int = 2) -> dict:
    return {"xyxy": list(xyxy), "class_name": "bicycle", "track_id": track_id}


# --- blur_regions (pure) --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
@pytest.mark.parametrize("box, inside", [
    ([40, 30, 140, 130], (slice(30, 130), slice(40, 140))),
    ([-50, -20, 60, 50], (slice(0, 50), slice(0, 60))),          # clipped at the top-left
    ([250.4, 180.6, 400, 300], (slice(180, 240), slice(250, 320))),  # fractional edges round outward
])
def test_blur_regions_blurs_inside_and_leaves_the_rest_alone(method, box, inside):
    image = texture()
    out = blur_regions(image, np.array([box]), method)
    mask = np.zeros(image.shape[:2], bool)
    mask[inside] = True
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[~mask] == image[~mask]).all()
    assert sharpness(out[inside]) < 0.05 * sharpness(image[inside])
    assert (image == texture()).all()  # the input is not changed


def test_pixelate_makes_blocks_of_one_colour():
    image = texture(160, 160)
    out = blur_regions(image, [[0, 0, 128, 128]], "pixelate")
    block = 128 // 8
    for y in range(0, 128, block):
        for x in range(0, 128, block):
            tile = out[y:y + block, x:x + block].reshape(-1, 3)
            assert (tile == tile[0]).all()


@pytest.mark.parametrize("boxes", [np.zeros((0, 4)), [[10, 10, 10, 50]], [[400, 400, 500, 500]]])
def test_empty_or_outside_boxes_change_nothing(boxes):
    image = texture()
    assert (blur_regions(image, boxes) == image).all()


@pytest.mark.parametrize("boxes, method, message", [
    ([[1, 2, 3]], "gaussian", r"\(N, 4\)"),
    ([[0, 0, np.nan, 5]], "gaussian", "finite"),
    ([[0, 0, 5, 5]], "median", "not one of gaussian, pixelate"),
])
def test_blur_regions_refuses_bad_input(boxes, method, message):
    with pytest.raises(ValueError, match=message):
        blur_regions(texture(), boxes, method)


def test_grey_images_are_blurred_too():
    gray = texture()[..., 0]
    out = blur_regions(gray, [[0, 0, 100, 100]])
    assert out.shape == gray.shape and sharpness(out[:100, :100]) < 0.05 * sharpness(gray[:100, :100])


def test_expand_boxes_grows_each_side_by_the_fraction():
    assert expand_boxes(np.array([[10, 20, 30, 60]]), 0.1).tolist() == [[8, 16, 32, 64]]


def test_stored_person_boxes_keeps_person_classes_and_names_a_bad_box():
    boxes = [bike([0, 0, 5, 5]), person([1, 2, 3, 4]), {"xyxy": [5, 6, 7, 8], "class_name": "pedestrian"}]
    assert stored_person_boxes(boxes, frozenset({"person"})).tolist() == [[1, 2, 3, 4]]
    assert stored_person_boxes(boxes, frozenset({"person", "pedestrian"})).shape == (2, 4)
    assert stored_person_boxes(None, frozenset({"person"})).shape == (0, 4)
    with pytest.raises(ValueError, match=r"boxes\[1\]\.xyxy"):
        stored_person_boxes([bike([0, 0, 1, 1]), {"xyxy": [1, 2], "class_name": "person"}], frozenset({"person"}))


@pytest.mark.parametrize("boxes", [
    [(203.4, 151.5, 289.0, 330.0), (300.5, 200.2, 350.7, 260.9)],   # stored exactly (0.1 px)
    [(203.37, 151.52, 288.96, 330.04), (300.5, 200.2, 350.7, 260.9)],  # rounded when stored: a pixel off at most
])
def test_crop_origin_matches_where_save_evidence_cut_the_crop(tmp_path, boxes):
    # A smooth random texture: JPEG keeps it, and any shift of the window shows.
    image = cv2.normalize(cv2.GaussianBlur(texture(480, 640, seed=3), (0, 0), 1.5), None, 0, 255, cv2.NORM_MINMAX)
    frame = Frame("cam-1", 0, T0, image)
    violation = make_violation("v1", boxes=boxes, classes=["person", "bicycle"])
    paths = save_evidence(tmp_path, violation, frame, make_camera(), Detections.empty())
    crop = cv2.imread(paths["crop"]).astype(np.int16)
    stored = np.array([b["xyxy"] for b in evidence_boxes(violation)])  # what the database keeps (0.1 px)
    ox, oy = crop_origin_xy(stored)
    h, w = crop.shape[:2]

    def misfit(dx: int, dy: int) -> float:
        return float(np.abs(image[oy + dy:oy + dy + h, ox + dx:ox + dx + w].astype(np.int16) - crop).mean())

    near = {(dx, dy): misfit(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    best = min(near, key=near.get)
    assert near[best] < 6 and misfit(best[0] + 3, best[1]) > 2 * near[best]
    if boxes[0][0] == 203.4:
        assert best == (0, 0)


# --- redact_image (pure) --------------------------------------------------------------------------------

def test_redact_image_blurs_stored_people_in_full_frames_and_shifted_in_crops():
    policy = PrivacyPolicy(blur_faces=False, blur_plates=False, margin_frac=0.0)
    boxes = [person([100, 100, 160, 200]), bike([150, 150, 250, 250])]
    frame = texture(400, 400)
    out, counts = redact_image(frame, "original", boxes, policy, NO_DETECTORS)
    assert counts.people == 1 and sharpness(out[100:200, 100:160]) < 0.05 * sharpness(frame[100:200, 100:160])
    assert (out[210:250, 170:250] == frame[210:250, 170:250]).all()  # the bicycle stays sharp: it is the evidence
    ox, oy = crop_origin_xy(np.array([b["xyxy"] for b in boxes]))
    crop = frame[oy:oy + 220, ox:ox + 220].copy()
    out, counts = redact_image(crop, "crop", boxes, policy, NO_DETECTORS)
    inside = (slice(100 - oy, 200 - oy), slice(100 - ox, 160 - ox))
    assert counts.people == 1 and sharpness(out[inside]) < 0.05 * sharpness(crop[inside])
    out, counts = redact_image(frame, "strip", boxes, policy, NO_DETECTORS)  # geometry unknown: boxes unused
    assert counts.people == 0 and (out == frame).all()


@pytest.mark.parametrize("policy, expected", [
    (PrivacyPolicy(), (1, 1, 1)),
    (PrivacyPolicy(blur_people=False), (0, 1, 1)),
    (PrivacyPolicy(blur_faces=False, blur_plates=False), (1, 0, 0)),
    (PrivacyPolicy(blur_people=False, blur_faces=False, blur_plates=False), (0, 0, 0)),
])
def test_redact_image_follows_the_policy(policy, expected):
    detectors = {"face": lambda img: np.array([[10.0, 10, 40, 40]]), "plate": lambda img: np.array([[200.0, 200, 260,
                                                                                                      220]])}
    frame = texture(300, 300)
    out, counts = redact_image(frame, "annotated", [person([100, 100, 150, 180])], policy, detectors)
    assert (counts.people, counts.faces, counts.plates) == expected
    for found, region in zip(expected, [(slice(100, 180), slice(100, 150)), (slice(10, 40), slice(10, 40)),
                                        (slice(200, 220), slice(200, 260))]):
        assert (sharpness(out[region]) < 0.1 * sharpness(frame[region])) == bool(found)


# --- public copies (files) ------------------------------------------------------------------------------

class CountingDetector:
    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        return self.boxes


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_public_copy_is_made_once_owner_only_beside_the_original(tmp_path):
    original = write_jpeg(tmp_path / "ev" / "v1.orig.jpg", texture())
    face = CountingDetector([[20, 20, 60, 60]])
    copies = PublicCopies(PrivacyPolicy(blur_plates=False), {"face": face})
    served = copies.public_path(original, "original", [person([100, 50, 160, 200])])
    assert served.parent == original.parent and served.name == f"v1.orig.public-{copies.policy.fingerprint}.jpg"
    assert stat.S_IMODE(served.stat().st_mode) == 0o600
    image, blurred = cv2.imread(str(original)), cv2.imread(str(served))
    assert sharpness(blurred[50:200, 100:160]) < 0.1 * sharpness(image[50:200, 100:160])
    assert sharpness(blurred[20:60, 20:60]) < 0.1 * sharpness(image[20:60, 20:60])
    before = served.stat().st_mtime_ns
    assert copies.public_path(original, "original", [person([100, 50, 160, 200])]) == served
    assert face.calls == 1 and served.stat().st_mtime_ns == before
    # Another policy: another copy (never one made under the old policy).
    other = PublicCopies(PrivacyPolicy(method="pixelate", blur_plates=False), {"face": face})
    assert other.public_path(original, "original", None) != served
    assert len(public_copy_paths(original)) == 2
    assert remove_public_copies(original) == 2 and public_copy_paths(original) == [] and original.is_file()


def test_a_file_with_nothing_to_blur_is_copied_byte_for_byte(tmp_path):
    original = write_jpeg(tmp_path / "v2.jpg", texture())
    served = PublicCopies(PrivacyPolicy(), {"face": CountingDetector([]), "plate": CountingDetector([])}) \
        .public_path(original, "annotated", [bike([0, 0, 50, 50])])
    assert served != original and served.read_bytes() == original.read_bytes()


def test_policy_off_serves_the_original_and_other_files_are_refused(tmp_path):
    original = write_jpeg(tmp_path / "v3.jpg", texture())
    off = PrivacyPolicy(blur_people=False, blur_faces=False, blur_plates=False)
    assert PublicCopies(off, {}).public_path(original, "original", None) == original
    for name, content, message in [("v3.avi", b"RIFF", "v3.avi: only JPEG, PNG and MP4"),
                                   ("v3.clip.mp4", b"\x00\x00\x00\x18ftypmp42", "v3.clip.mp4: the blurred clip"),
                                   ("v4.jpg", b"not a jpeg", "v4.jpg: cannot be decoded")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(PrivacyError, match=message):
            PublicCopies(PrivacyPolicy(), {}).public_path(tmp_path / name, "clip", None)
        assert public_copy_paths(tmp_path / name) == []


def test_clips_are_blurred_picture_by_picture(tmp_path):
    from service.timelapse import write_clip

    pictures = [cv2.normalize(cv2.GaussianBlur(texture(120, 160, seed=i), (0, 0), 1.0), None, 0, 255,
                              cv2.NORM_MINMAX) for i in range(3)]
    clip = tmp_path / "v6.clip.mp4"
    write_clip(clip, pictures, fps=5, hold_s=0.2)
    face = CountingDetector([[40, 30, 100, 90]])
    served = PublicCopies(PrivacyPolicy(blur_plates=False, margin_frac=0.0), {"face": face}).public_path(
        clip, "clip", [person([0, 0, 160, 120])])  # stored boxes are frame pixels: not used on a clip's crops
    assert served.suffix == ".mp4" and stat.S_IMODE(served.stat().st_mode) == 0o600
    import av

    with av.open(str(served)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == face.calls == 3
    for frame, picture in zip(frames, pictures):
        assert sharpness(frame[30:90, 40:100]) < 0.2 * sharpness(picture[30:90, 40:100])
        assert sharpness(frame[:, 110:]) > 0.3 * sharpness(picture[:, 110:])  # the rest keeps its detail


def test_missing_cascade_files_refuse_every_copy_instead_of_passing_faces(tmp_path):
    with pytest.raises(PrivacyUnavailableError, match="blur_faces: haarcascade_frontalface_default.xml not found"):
        default_detectors(PrivacyPolicy(), dirs=[tmp_path])
    assert default_detectors(PrivacyPolicy(blur_faces=False, blur_plates=False), dirs=[tmp_path]) == {}
    original = write_jpeg(tmp_path / "v5.jpg", texture())
    with pytest.raises(PrivacyUnavailableError, match="opencv-data"):
        PublicCopies(PrivacyPolicy(), cascade_dirs=[tmp_path / "none"]).public_path(original, "original", None)
    assert public_copy_paths(original) == []


@pytest.mark.parametrize("bad", [{"method": "median"}, {"margin_frac": 2}, {"blur_cats": True}])
def test_privacy_settings_are_bounded_and_closed(bad):
    with pytest.raises(ValidationError):
        PrivacySettings.model_validate(bad)
    assert PrivacyPolicy.from_settings(PrivacySettings(method="pixelate")).method == "pixelate"


def test_retention_removes_the_public_copies_with_the_original(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False})
    services = create_app(settings, config=make_config()).state.services
    original = write_jpeg(settings.evidence_dir / "v9.orig.jpg", texture())
    case = services.cases.ingest(make_violation("v9", classes=["person"]), {"original": str(original)},
                                 origin=make_origin())
    services.cases.reject(case.id, "alice", "not a stall")
    copy = PublicCopies(PrivacyPolicy(blur_faces=False, blur_plates=False), {}).public_path(
        original, "original", services.cases.get(case.id).evidence[0].boxes)
    assert copy.is_file()
    report = sweep_evidence(services.session_factory, RetentionSettings(rejected_days=1), settings.evidence_dir,
                            T0 + timedelta(days=400))
    assert report.files_deleted == 1 and not original.exists() and not copy.exists()
    services.engine.dispose()


# --- the service: nothing unblurred leaves, admins may see the original -----------------------------------

PERSON_BOX = (60.0, 40.0, 140.0, 200.0)


@pytest.fixture
def served(tmp_path):
    """The service (privacy on, cascades off so the test controls what is blurred) with one confirmed case
    whose evidence shows a stored person box."""
    settings = Settings(
        database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
        run_flights=False, outbox={"deliver": False}, public_base_url="http://testserver", auth_limit={"burst": 1000},
        privacy={"blur_faces": False, "blur_plates": False},
        api_keys=[{"name": "root", "role": "admin", "key": KEYS["admin"]},
                  {"name": "alice", "role": "reviewer", "key": KEYS["alice"]}])
    app = create_app(settings, config=make_config())
    services = app.state.services
    frame = texture(240, 320, seed=7)
    files = {"annotated": write_jpeg(settings.evidence_dir / "v1.jpg", frame),
             "original": write_jpeg(settings.evidence_dir / "v1.orig.jpg", frame)}
    case = services.cases.ingest(make_violation("v1", boxes=[PERSON_BOX], classes=["person"]),
                                 {k: str(v) for k, v in files.items()}, origin=make_origin())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, services, services.cases.get(case.id), files


def assert_blurred(body: bytes, original: Path) -> None:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = (int(v) for v in PERSON_BOX)
    sharp = cv2.imread(str(original))
    assert body != original.read_bytes()
    assert sharpness(image[y1:y2, x1:x2]) < 0.1 * sharpness(sharp[y1:y2, x1:x2])
    assert np.abs(image[:, 200:].astype(int) - sharp[:, 200:]).mean() < 8  # the rest is the same scene


def test_signed_links_serve_only_the_blurred_copy(served):
    client, services, case, files = served
    for evidence in case.evidence:
        url = services.evidence_links.url(case.id, evidence.file).removeprefix("http://testserver")
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert_blurred(response.content, files[evidence.kind])
        # A signed link names the case's file; the copy's own name is no file of the case.
        copy = services.public_copies.copy_path(files[evidence.kind]).name
        assert client.get(services.evidence_links.url(case.id, copy).removeprefix("http://testserver")
                          ).status_code == 404


def test_reviewers_see_blurred_evidence_and_only_admins_the_original(served):
    client, services, case, files = served
    for evidence in case.evidence:
        path = f"/api/v1/cases/{case.id}/evidence/{evidence.id}"
        assert_blurred(client.get(path, headers=ALICE).content, files[evidence.kind])
        assert_blurred(client.get(path, headers=ADMIN).content, files[evidence.kind])
        refused = client.get(path, params={"original": "1"}, headers=ALICE)
        assert refused.status_code == 403 and "only admins" in refused.text
        original = client.get(path, params={"original": "true"}, headers=ADMIN)
        assert original.status_code == 200 and original.content == files[evidence.kind].read_bytes()


def test_evidence_that_cannot_be_blurred_is_not_served_outside(served):
    client, services, case, files = served
    clip = files["original"].with_name("v1.clip.mp4")
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a clip that decodes")
    from service.db.models import Evidence

    with services.session_factory.begin() as session:
        session.add(Evidence(case_id=case.id, kind="clip", path=str(clip), ts=T0, boxes=None))
        evidence_id = session.query(Evidence).filter_by(path=str(clip)).one().id
    for response in (client.get(services.evidence_links.url(case.id, clip.name).removeprefix("http://testserver")),
                     client.get(f"/api/v1/cases/{case.id}/evidence/{evidence_id}", headers=ALICE)):
        assert response.status_code == 403 and "the blurred clip could not be made" in response.text
        assert b"not a clip that decodes" not in response.content and str(clip.parent) not in response.text
    original = client.get(f"/api/v1/cases/{case.id}/evidence/{evidence_id}?original=1", headers=ADMIN)
    assert original.status_code == 200 and original.content == clip.read_bytes()


def test_a_host_without_the_cascades_serves_no_evidence(served, tmp_path):
    client, services, case, files = served
    services.public_copies = PublicCopies(PrivacyPolicy(), cascade_dirs=[tmp_path / "none"])
    evidence = case.evidence[0]
    response = client.get(services.evidence_links.url(case.id, evidence.file).removeprefix("http://testserver"))
    assert response.status_code == 503 and "opencv-data" in response.text
    assert client.get(f"/api/v1/cases/{case.id}/evidence/{evidence.id}", headers=ALICE).status_code == 503


# --- Haar cascades --------------------------------------------------------------------------------------

def test_group_rectangles_keeps_clusters_with_enough_hits():
    hits = np.array([[10, 10, 20, 20]] * 4 + [[100, 100, 30, 30]] * 3 + [[12, 12, 8, 8]] * 5)
    out = group_rectangles(hits, 3, 0.2)
    # The lone pair of 3 hits is too weak; the small cluster lies inside the big one but is stronger (5 > 4).
    assert sorted(out.tolist()) == [[10, 10, 30, 30], [12, 12, 20, 20]]
    assert group_rectangles(np.zeros((0, 4)), 3, 0.2).shape == (0, 4)


CASCADES = [c for c in (FACE_CASCADE, PLATE_CASCADE) if find_cascade(c) is not None]
needs_cascades = pytest.mark.skipif(len(CASCADES) < 2, reason="no Haar cascade XML files (Debian opencv-data, "
                                                              "scripts/install_system_deps.sh)")
OPENCV4 = subprocess.run(["/usr/bin/python3", "-c", "import cv2; cv2.CascadeClassifier"],
                         capture_output=True).returncode == 0 if Path("/usr/bin/python3").is_file() else False

# Real photos: "Bicycle v3", Roboflow Universe user thesis-2-eoeid, CC BY 4.0 (../shared/README.md): product
# shots and South-Asian street scenes. They hold no clear frontal face or number plate: the hits below are the
# cascades' false hits (wheel hubs, walls, a watermark's text), which is what the cascades find in such scenes.
# Expected boxes (x1, y1, x2, y2) as OpenCV 4.6.0's CascadeClassifier.detectMultiScale(gray, 1.1, 3) found them.
REAL_HITS = [
    (FACE_CASCADE, "test/images/148G4QIDPDTY_jpg.rf.30275fd5c87f5fb3fd9e2a45137e04a8.jpg", [[109, 249, 173, 313]]),
    (FACE_CASCADE, "test/images/124XGXAA45NH_jpg.rf.e77ae68e5f0618a2f71ad034d3883d6f.jpg", [[231, 246, 321, 336]]),
    (FACE_CASCADE, "test/images/1000_F_220334286_53z6aJnh72XgyxQjsDahg2IEoaItSiJO_grayscale_jpg.rf."
     "5b18ea2b49d1625e5f0d60424248ffc1.jpg", []),
    (PLATE_CASCADE, "test/images/HFCCFP6DNAN0_jpg.rf.d5f90d00447b6623b26f9c9ec8715e2e.jpg", [[14, 363, 84, 386]]),
    (PLATE_CASCADE, "test/images/EYXA5SV019Z4_grayscale_jpg.rf.17a35f94f3e3708799df271d0050212d.jpg",
     [[285, 346, 358, 370]]),
]


def real_photo(name: str) -> Path:
    if not BICYCLES.is_dir():
        pytest.skip(f"{BICYCLES} absent (the shared data set bicycles-2000)")
    return BICYCLES / name


@needs_cascades
@pytest.mark.parametrize("cascade, photo, expected", REAL_HITS)
def test_haar_evaluator_finds_what_opencv4_found_on_real_photos(cascade, photo, expected):
    found = HaarCascade(find_cascade(cascade)).detect(cv2.imread(str(real_photo(photo))))
    assert found.tolist() == expected


@needs_cascades
@pytest.mark.skipif(not OPENCV4, reason="no OpenCV 4 CascadeClassifier for /usr/bin/python3 (Debian python3-opencv) "
                                        "to compare with live")
def test_haar_evaluator_agrees_with_a_live_opencv4_on_more_photos():
    photos = sorted((real_photo("test") / "images").glob("*.jpg"))[20:23]
    script = ("import cv2, json, sys\n"
              "c = cv2.CascadeClassifier(sys.argv[1])\n"
              "print(json.dumps([[list(map(int, r)) for r in c.detectMultiScale(cv2.cvtColor(cv2.imread(p), "
              "cv2.COLOR_BGR2GRAY), 1.1, 3)] for p in sys.argv[2:]]))\n")
    for name in CASCADES:
        out = subprocess.run(["/usr/bin/python3", "-c", script, str(find_cascade(name)), *map(str, photos)],
                             capture_output=True, text=True, check=True).stdout
        cascade = HaarCascade(find_cascade(name))
        for photo, theirs in zip(photos, json.loads(out)):
            ours = cascade.detect(cv2.imread(str(photo)))
            assert sorted(ours.astype(int).tolist()) == sorted([x, y, x + w, y + h] for x, y, w, h in theirs), photo


@needs_cascades
def test_the_default_detectors_blur_what_the_plate_cascade_finds_in_a_real_photo(tmp_path):
    photo = real_photo(REAL_HITS[3][1])
    original = tmp_path / "v1.orig.jpg"
    shutil.copyfile(photo, original)
    copies = PublicCopies(PrivacyPolicy(blur_faces=False, margin_frac=0.0))
    served = cv2.imread(str(copies.public_path(original, "original", None)))
    x1, y1, x2, y2 = REAL_HITS[3][2][0]
    image = cv2.imread(str(original))
    assert sharpness(served[y1:y2, x1:x2]) < 0.1 * sharpness(image[y1:y2, x1:x2])
    assert np.abs(served[:300].astype(int) - image[:300]).mean() < 3
