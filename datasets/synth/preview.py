"""Contact sheets of small synthetic datasets, for looking at what the generator makes.

Run ``python -m datasets.synth.preview [OUT_DIR]`` to write ``synth_street_contact.png`` and
``synth_aerial_contact.png`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2

from datasets.synth.dataset import generate_dataset
from datasets.yolo import contact_sheet

__all__ = ["write_contact_sheets"]

_MAX_SHEET_BYTES = 1_500_000


def _shrink_png(path: Path, max_bytes: int) -> None:
    """Re-encode a sheet as an 8-bit-per-channel PNG at reduced size until it fits `max_bytes`."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    scale = 1.0
    while path.stat().st_size > max_bytes and scale > 0.3:
        scale *= 0.85
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def write_contact_sheets(out_dir: Path, n_images: int = 16, seed: int = 0, shared_dir: Path | None = None,
                         cell_px: int = 400) -> list[Path]:
    """Generate a small street and aerial set and draw their labelled boxes on one sheet each.

    Args:
        out_dir: Folder for ``synth_street_contact.png`` and ``synth_aerial_contact.png``.
        n_images: Images per sheet.
        seed: Dataset seed.
        shared_dir: Third-party data (real bikes and footage); None finds ``../shared`` when present.
        cell_px: Size of each cell.

    Returns:
        The two sheet paths (each kept under 1.5 MB).
    """
    out_dir = Path(out_dir)
    sheets = []
    with tempfile.TemporaryDirectory(prefix="synth-preview-") as tmp:
        for kind in ("street", "aerial"):
            data_yaml = generate_dataset(kind, Path(tmp) / kind, n_images, seed, val_fraction=0.0,
                                         shared_dir=shared_dir, progress=False)
            out_png = out_dir / f"synth_{kind}_contact.png"
            contact_sheet(data_yaml, "train", out_png, n_images=n_images, seed=seed, cell_px=cell_px)
            _shrink_png(out_png, _MAX_SHEET_BYTES)
            sheets.append(out_png)
    return sheets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path,
                        default=Path(__file__).resolve().parents[2] / "benchmarks" / "results")
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_contact_sheets(args.out_dir, args.n_images, args.seed):
        print(path)


if __name__ == "__main__":
    main()
