"""`streetwatch retrain` end to end on a tiny set: a SQLite case store filled through the service's own code
(the builders of tests/datasets/test_from_reviews.py), the shipped street model copied as the current model, a
holdout of four real bicycle photos, and fine-tuning for one epoch at 64 px (seconds; the candidate is of course
worse than the current model, which is what the refusal needs).

Both outcomes are run: a refusal (a negative tolerance: every holdout must gain more than AP50 can) that leaves
the current model in place with the table beside the candidate's card, then the same candidate judged afresh
(``--candidate``, no second training) through a generous gate: released into place with its table, the replaced
model kept, and the next review window starting where this one read its reviews.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from detector.runtime.card import load_card, sha256_of
from service.cli import main
from service.cli.train import EXIT_NOT_RELEASED
from tests.conftest import REPO_ROOT
from tests.datasets.test_from_reviews import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def tiny_holdout(bicycles_dir: Path, out: Path, n: int = 4) -> Path:
    """The first `n` photos of bicycles-2000's test split (Roboflow Universe, user thesis-2-eoeid, project
    bicycle-3ln52, CC BY 4.0; in ../shared/data) as a one-split dataset."""
    for sub in ("images", "labels"):
        (out / sub / "test").mkdir(parents=True)
    for img in sorted((bicycles_dir / "test" / "images").glob("*.jpg"))[:n]:
        os.symlink(img, out / "images" / "test" / img.name)
        label = bicycles_dir / "test" / "labels" / f"{img.stem}.txt"
        (out / "labels" / "test" / f"{img.stem}.txt").write_text(label.read_text())
    data = out / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(out), "test": "images/test", "names": ["bicycle"], "nc": 1}))
    return data


def current_model(models: Path, holdout_yaml: Path) -> Path:
    """A copy of the shipped street model whose card lists one holdout and was released before the reviews."""
    folder = models / "street"
    shutil.copytree(REPO_ROOT / "models" / "street", folder)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["metrics"] = {"val": card["metrics"]["val"], "holdout_tiny": {"data": f"{holdout_yaml} (test, all)"}}
    card["training"]["released_at"] = "2026-06-01T12:00:00+00:00"  # the store's reviewers decide on 2026-06-02
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return folder


def reviewed_store(root: Path) -> Store:
    """Eight reviewed cases on four cameras: stalls and bicycles confirmed, one awning rejected, one pending."""
    s = Store(root)
    c = s.cases
    for i, (kind, box, cls) in enumerate([
            ("stall_occupation", [100, 200, 400, 450], "stall"), ("bike_misparked", [500, 400, 620, 520], "bicycle"),
            ("stall_occupation", [700, 150, 1000, 420], "stall"), ("bike_misparked", [200, 500, 330, 620], "bicycle"),
            ("stall_occupation", [300, 250, 640, 560], "stall"), ("bike_misparked", [900, 480, 1010, 600], "bicycle"),
            ("stall_occupation", [50, 100, 360, 380], "stall")]):
        case_id = s.add(f"c{i}", kind, [box], [cls], camera_id=f"cam-{i % 4}", day=i % 2, seed=10 + i)
        c.confirm(case_id, "li")
    awning = s.add("awning", "stall_occupation", [[800, 50, 1200, 250]], ["stall"], camera_id="cam-0", seed=30)
    c.reject(awning, "li", "not a stall: shop awning")
    s.add("pending", "stall_occupation", [[100, 100, 200, 200]], ["stall"], camera_id="cam-1", seed=31)
    return s


def retrain(models: Path, *args: str) -> int:
    return main(["retrain", "--model", "street", "--models-dir", str(models), "--epochs", "1", "--imgsz", "64",
                 "--batch", "4", "--workers", "0", "--split-by", "case", "--val-frac", "0.5", "--quiet", *args])


def test_retrain_refuses_then_releases(bicycles_dir, tmp_path, capsys):
    pytest.importorskip("ultralytics", reason="needs the [train] extra (scripts/test.sh installs it)")
    holdout = tiny_holdout(bicycles_dir, tmp_path / "holdout")
    models = tmp_path / "models"
    folder = current_model(models, holdout)
    shipped_sha = sha256_of(folder / "street.onnx")
    store = reviewed_store(tmp_path / "store")

    # 1. Reviews → dataset → one epoch of fine-tuning → candidate. A negative tolerance (every holdout would have
    #    to gain more than 1.0 AP50) refuses it, and nothing moves.
    rc = retrain(models, "--db", str(store.db), "--work", str(tmp_path / "w1"), "--tolerance", "-1")
    out, err = capsys.readouterr()
    assert rc == EXIT_NOT_RELEASED, err
    assert "not released: street stays 2026.11.29" in err
    assert "- holdout holdout_tiny: AP50 " in err and "short of the gain 1 a negative tolerance requires" in err
    assert sha256_of(folder / "street.onnx") == shipped_sha and not (models / "street.previous").exists()
    assert not (folder / "retrain.md").exists()
    candidate = tmp_path / "w1" / "candidate" / "street"
    table = json.loads((candidate / "retrain.json").read_text())
    assert table["release"] is False and table["tolerance_ap50"] == -1
    rows = {h["name"]: h for h in table["holdouts"]}
    assert rows["holdout_tiny"]["verdict"] in ("worse", "too little gain")
    assert rows["holdout_tiny"]["current"]["images"] == rows["holdout_tiny"]["candidate"]["images"] == 4
    (reviewed_name,) = [n for n, h in rows.items() if h["role"] == "reviewed"]
    reviewed = rows[reviewed_name]
    # the reviewed data's own val split, measured on both models; its images without objects counted apart
    assert reviewed["current"]["images"] == reviewed["candidate"]["images"] > 0
    assert reviewed["current"]["instances"] > 0
    assert reviewed["current"]["negative_images"] == reviewed["candidate"]["negative_images"]
    assert "| holdout_tiny | holdout | 4 |" in (candidate / "retrain.md").read_text() and "| holdout_tiny |" in out
    # the candidate's card records what it was measured on and the comparison
    cand_card = load_card(candidate / "card.yaml")
    assert cand_card.training["retrain"]["passed"] is False and cand_card.training["retrain"]["reviewed_cases"] == 8
    assert set(cand_card.training["retrain"]["holdouts"]) == {"holdout_tiny", reviewed_name}
    # where it may be used is written by people and carried over from the model it was fine-tuned from
    shipped = load_card(REPO_ROOT / "models" / "street" / "card.yaml")
    assert cand_card.intended_use == shipped.intended_use and cand_card.limitations == shipped.limitations
    assert cand_card.metrics["holdout_tiny"]["data"] == f"{holdout} (test, all)"
    assert cand_card.training["reviews_read_at"] and cand_card.input.width_px == 64

    # 2. The same candidate judged afresh through a generous gate (any loss tolerated, any change on the reviewed
    #    data accepted): a dry run moves nothing, a real one moves it into place with its table.
    generous = ["--candidate", str(candidate), "--tolerance", "1", "--min-gain", "-1"]
    assert retrain(models, *generous, "--dry-run") == 0
    assert "would be released" in capsys.readouterr().err and sha256_of(folder / "street.onnx") == shipped_sha
    rc = retrain(models, *generous)
    out, err = capsys.readouterr()
    assert rc == 0, err
    card = load_card(folder / "card.yaml")
    assert card.sha256 == cand_card.sha256 == sha256_of(folder / "street.onnx") != shipped_sha
    assert json.loads((folder / "retrain.json").read_text())["release"] is True
    assert "Decision: **released**" in (folder / "retrain.md").read_text()
    assert card.training["retrain"]["passed"] is True and card.training["released_at"]
    assert card.notes.startswith("Retrained by `streetwatch retrain` from street 2026.11.29")
    assert card.notes.count("Retrained by") == 1  # judged twice, summarised once
    assert not candidate.exists()
    # the replaced model is kept under its version, whole, for a rollback
    (kept,) = (models / "street.previous").iterdir()
    assert kept.name == "2026.11.29" and (kept / "street.pt").is_file()
    assert sha256_of(kept / "street.onnx") == shipped_sha
    assert f"mv {kept} {folder}" in err
    # the new card lists the holdout and the reviewed split for the next retraining
    assert {"holdout_tiny", reviewed_name} <= set(card.metrics)

    # 3. The next retraining starts where this one read its reviews: nothing has been decided since.
    rc = retrain(models, "--db", str(store.db), "--work", str(tmp_path / "w3"))
    _, err = capsys.readouterr()
    assert rc == EXIT_NOT_RELEASED and "no case reviewed since" in err and "training.reviews_read_at" in err


@pytest.mark.parametrize("files, extra, error", [
    ((), ["--model", "nope"], "no such model card"),
    (("card.yaml",), [], "no checkpoint to fine-tune from"),
    (("card.yaml", "street.pt"), [], "holdout holdout_gone: missing/data.yaml: "),
    (("card.yaml", "street.pt"), [], "(leave it out with --skip-holdout holdout_gone)"),
    (("card.yaml", "street.pt"), ["--skip-holdout", "nope"],
     "--skip-holdout nope: not a holdout of street (its holdouts: holdout_gone)"),
    (("card.yaml", "street.pt"), ["--skip-holdout", "holdout_gone", "--holdout", "h=gone/data.yaml:test"],
     "holdout h: gone/data.yaml: "),
    (("card.yaml", "street.pt"), ["--skip-holdout", "holdout_gone", "--holdout", "h=gone/data.yaml"],
     "--holdout 'h=gone/data.yaml': expected NAME=DATA.yaml:SPLIT"),
    (("card.yaml", "street.pt"), ["--skip-holdout", "holdout_gone", "--since", "last week"],
     "--since 'last week': not an ISO 8601 time"),
    (("card.yaml", "street.pt"), ["--skip-holdout", "holdout_gone"], "no_such.db: no such case database"),
])
def test_retrain_errors_name_what_is_wrong(tmp_path, capsys, files, extra, error):
    """Every error is one line naming the file, option or holdout, and comes before any training."""
    models = tmp_path / "models"
    (models / "street").mkdir(parents=True)
    if "card.yaml" in files:
        card = yaml.safe_load((REPO_ROOT / "models" / "street" / "card.yaml").read_text())
        card["metrics"] = {"holdout_gone": {"data": "missing/data.yaml (test, all)"}}
        (models / "street" / "card.yaml").write_text(yaml.safe_dump(card))
    if "street.pt" in files:
        (models / "street" / "street.pt").write_bytes(b"not read before the holdouts are checked")
    argv = ["retrain", "--model", "street", "--models-dir", str(models), "--db", str(tmp_path / "no_such.db"),
            "--work", str(tmp_path / "work")]
    assert main(argv + extra) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("streetwatch: error: ") and error in last, last
    assert not (tmp_path / "work").exists()
