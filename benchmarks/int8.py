"""fp32 vs static int8 of the same model: speed (median ms per frame, interleaved) and accuracy (AP50 on the
same split, computed by streetwatch's runtime). Writes benchmarks/results/int8_<model>.json and .md.

Run:  python benchmarks/int8.py --fp32 street --int8 street-int8 --data DATA.yaml --split val
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import environment, md_table, summary_ms, write_results  # noqa: E402
from datasets.evaluate import evaluate_model  # noqa: E402
from detector.runtime import RuntimeOptions, load_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default=None, help="results file stem (default: int8_<fp32 model name>)")
    args = parser.parse_args()

    models = {k: load_model(v, options=RuntimeOptions(intra_op_threads=args.threads))
              for k, v in (("fp32", args.fp32), ("int8", args.int8))}
    card = models["fp32"].card
    tensor = np.random.default_rng(0).random((1, 3, card.input.height_px, card.input.width_px), np.float32)
    times = {k: [] for k in models}
    for _ in range(args.runs):
        for k, m in models.items():
            t0 = time.perf_counter()
            m.run_raw(tensor)
            times[k].append(time.perf_counter() - t0)
    speed = {k: summary_ms(v) for k, v in times.items()}
    ratio = speed["fp32"]["median_ms"] / speed["int8"]["median_ms"]
    acc = {k: evaluate_model(m, Path(args.data), args.split).report for k, m in models.items()}
    per_class = {k: {r.name: round(r.ap50, 4) for r in rep.classes} for k, rep in acc.items()}
    delta = acc["int8"].overall.ap50 - acc["fp32"].overall.ap50
    result = {"benchmark": "int8", "environment": environment(), "fp32": args.fp32, "int8": args.int8,
              "data": args.data, "split": args.split, "speed": speed, "speedup_int8": round(ratio, 3),
              "ap50": {k: round(r.overall.ap50, 4) for k, r in acc.items()}, "ap50_per_class": per_class,
              "ap50_change": round(delta, 4), "targets": {"speedup_min": 1.6, "ap50_loss_max": 0.02}}
    rows = [[k, speed[k]["median_ms"], speed[k]["p90_ms"], round(acc[k].overall.ap50, 4),
             ", ".join(f"{n} {v:.3f}" for n, v in per_class[k].items())] for k in models]
    md = "\n".join([
        f"# fp32 vs static int8: {args.fp32}\n",
        f"{result['environment']['date_utc']} · {result['environment']['cpu_model']} · "
        f"{result['environment']['cpu_count']} cores · onnxruntime {result['environment']['onnxruntime']}\n",
        md_table(["model", "median ms (session.run)", "p90 ms", f"AP50 ({args.split})", "per class"], rows), "",
        f"- int8 speed-up: **{ratio:.2f}x** (target ≥ 1.6x: {'met' if ratio >= 1.6 else 'NOT met'})",
        f"- AP50 change: **{delta:+.4f}** (target ≥ −0.02: {'met' if delta >= -0.02 else 'NOT met'})",
    ])
    json_path, md_path = write_results(args.name or f"int8_{card.name}", result, md)
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
