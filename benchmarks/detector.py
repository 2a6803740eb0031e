"""Detector runtime benchmark.

On the same 1280x720 frames and the same ONNX file (yolov8n_int8.onnx, an ultralytics export) it times:
  ours        `OnnxDetector.detect(frame)`: letterbox + session.run + decode + NMS, boxes in frame pixels
  bare        `session.run` alone on a tensor made beforehand (the floor: no pre/post-processing at all)
  ultralytics `ultralytics.YOLO(<onnx>).predict(frame)` (needs the [train] extra)
Latency: the three are interleaved frame by frame, so a noisy neighbour on a shared machine slows all of
them alike, and compared as ratios of medians.
Throughput (frames/s over the whole frame list, as a service with several cameras needs): ours with W
worker threads sharing ONE detector (it is thread-safe; onnxruntime intra-op threads = 1 per call) against
ultralytics' predictor in one thread and in W threads with one YOLO instance each (its documented
thread-safe use). Configurations alternate, repeated; median frames/s.
It also times tiled inference on a 3840x2160 frame.

Run:  python benchmarks/detector.py [--rounds 5] [--frames 20]
Writes benchmarks/results/detector.json and detector.md.
"""

from __future__ import annotations

import argparse
import os
import threading
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import environment, md_table, shared_dir, summary_ms, write_results  # noqa: E402
from detector.geometry import box_iou  # noqa: E402
from detector.runtime import RuntimeOptions, TilingConfig, detect_tiled, load_model  # noqa: E402

TARGET_OVERHEAD = 0.15
TARGET_SPEEDUP = 1.2


def load_frames(n: int, size=(1280, 720)) -> tuple[list[np.ndarray], str]:
    """Real camera frames from ../shared/footage, scaled to 1280x720; noise if footage is absent."""
    shared = shared_dir()
    frames: list[np.ndarray] = []
    source = "random noise (../shared/footage absent)"
    if shared:
        videos = [shared / "footage" / v for v in ("parking-lot-cars.mp4", "people-walking.mp4")]
        per_video = max(1, n // len(videos))
        for video in videos:
            cap = cv2.VideoCapture(str(video))
            total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            for k in range(per_video):
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(k * total / per_video))
                ok, frame = cap.read()
                if ok:
                    frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
            cap.release()
        source = "../shared/footage parking-lot-cars.mp4 + people-walking.mp4, resized to 1280x720"
    rng = np.random.default_rng(0)
    while len(frames) < n:
        frames.append(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return frames[:n], source


def agreement(ours, theirs) -> float:
    """Share of ultralytics' boxes that ours reproduces (same class, IoU >= 0.9)."""
    total = hit = 0
    for a, b in zip(ours, theirs):
        total += len(b[0])
        if len(a) and len(b[0]):
            iou = box_iou(b[0], a.xyxy)
            same = b[1][:, None] == a.class_id[None, :]
            hit += int(((iou >= 0.9) & same).any(axis=1).sum())
    return hit / total if total else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tiled-repeats", type=int, default=5)
    parser.add_argument("--throughput-repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    shared = shared_dir()
    if shared is None:
        print("benchmarks/detector.py needs ../shared/models (set STREETWATCH_SHARED)", file=sys.stderr)
        return 2
    onnx_path = shared / "models" / "yolov8n_int8.onnx"
    frames, frame_source = load_frames(args.frames)

    ours = load_model("yolov8n-int8-coco")
    bare = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    bare_input = bare.get_inputs()[0].name
    tensors = [ours.preprocess([f])[0] for f in frames]  # made beforehand: bare pays no preprocessing

    try:
        from ultralytics import YOLO
        import ultralytics

        yolo = YOLO(str(onnx_path), task="detect")
        ul_version = ultralytics.__version__
    except ImportError:
        yolo, ul_version = None, None

    def run_ul(frame):
        r = yolo.predict(frame, imgsz=640, conf=0.25, iou=0.45, verbose=False)[0]
        return r.boxes.xyxy.numpy(), r.boxes.cls.numpy().astype(int)

    # Warm-up: first calls allocate and (for ultralytics) build its predictor.
    for f, t in zip(frames[:3], tensors[:3]):
        ours.detect(f)
        bare.run(None, {bare_input: t})
        if yolo:
            run_ul(f)

    times = {"ours": [], "bare": [], "ultralytics": []}
    last_ours, last_ul = [], []
    for rnd in range(args.rounds):
        for i, (f, t) in enumerate(zip(frames, tensors)):
            # Rotate the order so no method always runs right after another (cache effects).
            order = ["ours", "bare", "ultralytics"][(i + rnd) % 3:] + ["ours", "bare", "ultralytics"][:(i + rnd) % 3]
            for name in order:
                if name == "ultralytics" and yolo is None:
                    continue
                t0 = time.perf_counter()
                if name == "ours":
                    out = ours.detect(f)
                elif name == "bare":
                    bare.run(None, {bare_input: t})
                else:
                    out_ul = run_ul(f)
                dt = time.perf_counter() - t0
                times[name].append(dt)
                if rnd == args.rounds - 1:
                    if name == "ours":
                        last_ours.append(out)
                    elif name == "ultralytics":
                        last_ul.append(out_ul)
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)

    s_ours, s_bare = summary_ms(times["ours"]), summary_ms(times["bare"])
    overhead = s_ours["median_ms"] / s_bare["median_ms"] - 1
    result = {
        "benchmark": "detector",
        "environment": {**environment(), "ultralytics": ul_version},
        "model": str(onnx_path.name),
        "frames": {"count": len(frames), "size_px": [1280, 720], "source": frame_source, "rounds": args.rounds},
        "ours": s_ours,
        "bare_session_run": s_bare,
        "overhead_vs_bare": round(overhead, 4),
        "targets": {"overhead_vs_bare_max": TARGET_OVERHEAD, "speedup_vs_ultralytics_min": TARGET_SPEEDUP},
    }
    rows = [["ours: detect() end to end", s_ours["median_ms"], s_ours["p90_ms"], round(1000 / s_ours["median_ms"], 1)],
            ["bare session.run (tensor made beforehand)", s_bare["median_ms"], s_bare["p90_ms"],
             round(1000 / s_bare["median_ms"], 1)]]
    if yolo:
        s_ul = summary_ms(times["ultralytics"])
        speedup = s_ul["median_ms"] / s_ours["median_ms"]
        result.update(ultralytics_predict=s_ul, speedup_vs_ultralytics=round(speedup, 3),
                      box_agreement_with_ultralytics=round(agreement(last_ours, last_ul), 4))
        rows.append([f"ultralytics {ul_version} YOLO(onnx).predict", s_ul["median_ms"], s_ul["p90_ms"],
                     round(1000 / s_ul["median_ms"], 1)])

    # Throughput: the same frames, split over worker threads.
    def fps_of(worker_fns) -> float:
        chunks = [frames[i::len(worker_fns)] for i in range(len(worker_fns))]
        threads = [threading.Thread(target=lambda fn=fn, c=c: [fn(f) for f in c]) for fn, c in zip(worker_fns, chunks)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(frames) / (time.perf_counter() - t0)

    shared_det = load_model("yolov8n-int8-coco", options=RuntimeOptions(intra_op_threads=1))
    configs = {f"ours: {args.workers} workers share one detector (1 intra-op thread each)":
               [shared_det.detect] * args.workers,
               "ours: 1 worker, default threads": [ours.detect]}
    if yolo:
        ul_instances = [YOLO(str(onnx_path), task="detect") for _ in range(args.workers)]
        for inst in ul_instances:
            inst.predict(frames[0], imgsz=640, verbose=False)
        configs["ultralytics: 1 thread"] = [run_ul]
        configs[f"ultralytics: {args.workers} threads, one YOLO each"] = [
            (lambda f, m=m: m.predict(f, imgsz=640, conf=0.25, iou=0.45, verbose=False)) for m in ul_instances]
    fps = {name: [] for name in configs}
    for rep in range(args.throughput_repeats):
        for name, fns in configs.items():
            fps[name].append(fps_of(fns))
        print(f"throughput repeat {rep + 1}/{args.throughput_repeats} done", file=sys.stderr)
    fps_median = {name: round(float(np.median(v)), 2) for name, v in fps.items()}
    best_ours = max(v for k, v in fps_median.items() if k.startswith("ours"))
    throughput = {"frames_per_s_median": fps_median, "repeats": args.throughput_repeats}
    if yolo:
        best_ul = max(v for k, v in fps_median.items() if k.startswith("ultralytics"))
        throughput["best_ours_over_best_ultralytics"] = round(best_ours / best_ul, 3)
    result["throughput"] = throughput

    # Tiled inference on a 4K frame (a mosaic of real frames, so there is something to detect).
    big = cv2.resize(np.vstack([np.hstack(frames[0:3]), np.hstack(frames[3:6]), np.hstack(frames[6:9])]),
                     (3840, 2160))
    tiled_rows, tiled = [], {}
    for name in ("yolov8n-int8-coco", "yolox-nano-coco"):
        det = ours if name == "yolov8n-int8-coco" else load_model(name)
        detect_tiled(det, big, TilingConfig())
        samples, n_inputs, n_boxes = [], 0, 0
        for _ in range(args.tiled_repeats):
            t0 = time.perf_counter()
            found, n_inputs = detect_tiled(det, big, TilingConfig())
            samples.append(time.perf_counter() - t0)
            n_boxes = len(found)
        s = summary_ms(samples)
        tile_px = det.card.input.width_px
        tiled[name] = {**s, "tile_px": tile_px, "overlap_frac": 0.2, "network_inputs_per_frame": n_inputs,
                       "tiles_per_frame": n_inputs - 1, "full_frame_pass": True, "boxes": n_boxes,
                       "batched": det.batch_dynamic}
        tiled_rows.append([name, f"{tile_px}x{tile_px}", n_inputs - 1, s["median_ms"], s["p90_ms"],
                           round(s["median_ms"] / n_inputs, 1), n_boxes])
    result["tiled_3840x2160"] = tiled

    env = result["environment"]
    md = ["# Detector runtime benchmark\n",
          f"{env['date_utc']} · {env['cpu_model']} · {env['cpu_count']} cores · onnxruntime {env['onnxruntime']}"
          f" · ultralytics {ul_version}\n",
          f"Model `{onnx_path.name}` (ultralytics YOLOv8n, int8, 640x640) on {len(frames)} frames of 1280x720 "
          f"({frame_source}), {args.rounds} rounds, methods interleaved per frame. Medians.\n",
          md_table(["method", "median ms", "p90 ms", "frames/s"], rows), "",
          f"- Overhead of ours over bare session.run: **{overhead * 100:.1f}%** "
          f"(target ≤ {TARGET_OVERHEAD * 100:.0f}%: {'met' if overhead <= TARGET_OVERHEAD else 'NOT met'})"]
    if yolo:
        md.append(f"- Single-stream latency, ultralytics' predictor over ours: "
                  f"**{result['speedup_vs_ultralytics']:.2f}x** (see throughput below for the target)")
        bound = s_ul["median_ms"] / s_bare["median_ms"]
        result["single_stream_speedup_upper_bound"] = round(bound, 3)
        md.append(f"- Upper bound for any single-stream runtime on this file: ultralytics / bare session.run = "
                  f"{bound:.2f}x (ultralytics adds only {s_ul['median_ms'] - s_bare['median_ms']:.1f} ms to the "
                  f"ONNX run itself, so beating it by 1.2x needs concurrency, not leaner pre/post-processing)")
        md.append(f"- Boxes agreeing with ultralytics (same class, IoU ≥ 0.9): "
                  f"{result['box_agreement_with_ultralytics'] * 100:.1f}%")
    md += ["", "## Throughput (frames/s over all frames, median of repeats)\n",
           md_table(["configuration", "frames/s"], [[k, v] for k, v in fps_median.items()])]
    if yolo:
        ratio = throughput["best_ours_over_best_ultralytics"]
        md.append(f"\n- Best of ours over best of ultralytics: **{ratio:.2f}x** (target ≥ {TARGET_SPEEDUP}x: "
                  f"{'met' if ratio >= TARGET_SPEEDUP else 'NOT met'})")
    md += ["", "## Tiled inference, one 3840x2160 frame (overlap 0.2, plus one full-frame pass)\n",
           md_table(["model", "tile", "tiles/frame", "median ms/frame", "p90 ms", "ms per network input", "boxes"],
                    tiled_rows)]
    json_path, md_path = write_results("detector", result, "\n".join(md))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
