"""Live-stream capacity benchmark: how many 1280x720 25 fps RTSP cameras one machine keeps up with.

Each camera is a real RTSP stream: a GStreamer RTSP server process (tests/rtsp_server.py) per camera serves
a long looped H.264 file (made once with ffmpeg from ../shared/footage/people-walking.mp4: 1280x720, 25 fps,
one keyframe a second, as street cameras send). Each stream is read by an `RtspSource` sampled at 1 fps,
and every sample goes through the full `CameraPipeline` (detector shared by all cameras, tracker and rule
engine per camera). Samples are processed by a small pool of worker threads, one sample per camera at a
time (a camera's pipeline keeps order; while it waits, its source drops the oldest frame, as in the service).
The detector is thread-safe and runs with one onnxruntime intra-op thread per call.

Measured per run, over the window after every camera delivered its first sample:
  lag        now − frame.ts when the pipeline has finished the sample (frame.ts is the time of receipt):
             p50 / p95 / max
  samples    processed vs expected (N × window × sample fps), drops and rejections from SourceHealth
  CPU        this process's CPU time / wall time / N (fraction of one core per stream; the RTSP servers are
             separate processes and not counted)
  RSS        sampled every --rss-interval-s: start / end / max and slope (MB/min, least squares)
  stages     where the CPU goes, per camera-second: decode (the source's `DecodeTiming`: codec and BGR
             conversion of the sampled picture) and the pipeline's stages (`PipelineStep.stage_cpu_ms`: motion,
             preprocess, inference, postprocess, tracking, rules, second look; with a BatchingDetector its
             runners' CPU is inference), thread-CPU milliseconds summed over the window / window / N (CPU, not
             wall time: on a shared machine wall time also counts waiting for a core); "other" is this process's
             CPU not in a timed stage (RTSP receive and demux, the frame guard, queues, thread switches).
  servers    CPU of the RTSP server processes (the simulated cameras, not part of a node's work but sharing
             its cores), in cores

Defaults are the service's: motion gate on, the model's int8 copy where its card allows it
(`detector.runtime.precision`). `--no-motion-gate --precision fp32` measures the configuration of 2026-11-29.
`--batch-window-ms W` puts a `BatchingDetector` (detector.runtime.batch) between the cameras and the session
(with --workers large enough that several samples are in flight at once).

Modes:
  --n N                      one run with N cameras for --duration-s
  --find-max                 steps N over --steps (4,8,...,24) for --duration-s each (default 180) and reports
                             the largest N with p95 lag ≤ 2 s and ≤ 1% samples missing (stops at the first
                             N that fails unless --keep-going)
  --n N --soak-s 600         one long run at N cameras for the RSS-flatness check

Run (full scale, on an otherwise idle machine):
  python benchmarks/streams.py --find-max
  python benchmarks/streams.py --n 12 --soak-s 600 --out-name streams-soak
  python benchmarks/streams.py --find-max --steps 32,48,64,80 --out-name streams_per_node
  python benchmarks/streams.py --n 24 --no-motion-gate --precision fp32 --out-name streams_before_stages
Smoke run (writes elsewhere so it is not mistaken for a result):
  python benchmarks/streams.py --n 2 --duration-s 20 --results-dir /tmp/streams-smoke
Writes benchmarks/results/<out-name>.json and .md (default streams).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.common as common  # noqa: E402
from benchmarks.common import environment, md_table, shared_dir  # noqa: E402
from detector.motion import MotionGate, MotionGateConfig  # noqa: E402
from detector.pipeline import STAGES, CameraPipeline  # noqa: E402
from detector.rules import (  # noqa: E402
    RULES,
    BikeMisparkedRule,
    BikeRuleParams,
    RuleEngine,
    StallOccupationRule,
    StallRuleParams,
)
from detector.runtime import OnnxDetector, RuntimeOptions, load_model  # noqa: E402
from detector.runtime.batch import BatchingDetector  # noqa: E402
from detector.runtime.precision import PRECISIONS, choose_precision  # noqa: E402
from detector.sources.decode import DecodeTotals  # noqa: E402
from detector.sources import RtspSource  # noqa: E402
from detector.tracking import Tracker, TrackerConfig  # noqa: E402
from detector.types import Frame  # noqa: E402
from detector.zones import Zone  # noqa: E402
from tests.rtsp_server import RtspServer, make_long_file, rtsp_server_unavailable_reason  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_P95_LAG_S = 2.0
TARGET_MISSING_FRAC = 0.01
WIDTH_PX, HEIGHT_PX, FPS, GOP_FRAMES = 1280, 720, 25, 25
# Pipeline classes the service tracks with the default rules (service.pipeline.tracked_classes: what the rule
# modules read); the rules ignore everything else.
DEFAULT_KEEP_CLASSES = ",".join(sorted({c for rule in RULES.values() for c in rule.default_classes}))


# --- footage -----------------------------------------------------------------------------------------


def make_stream_file(cache_dir: Path, clip_s: float, min_length_s: float) -> Path:
    """A 1280x720 25 fps H.264 mp4 (1 s GOP, no B-frames) at least `min_length_s` long; cached.

    The clip is transcoded once (one ffmpeg thread, so a busy machine is not disturbed more than needed),
    then stream-copied end to end as often as needed (seconds).
    """
    shared = shared_dir()
    src = shared / "footage" / "people-walking.mp4" if shared else None
    if src is None or not src.is_file():
        raise SystemExit("benchmarks/streams.py needs ../shared/footage/people-walking.mp4 (set STREETWATCH_SHARED)")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is not installed")
    cache_dir.mkdir(parents=True, exist_ok=True)
    clip = cache_dir / f"people-walking-{WIDTH_PX}x{HEIGHT_PX}-{FPS}fps-{clip_s:g}s.mp4"
    if not clip.is_file():
        tmp = clip.with_suffix(".tmp.mp4")
        subprocess.run([ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-i", str(src), "-t", f"{clip_s:g}",
                        "-vf", f"scale={WIDTH_PX}:{HEIGHT_PX},fps={FPS}", "-an", "-c:v", "libx264",
                        "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "0",
                        "-g", str(GOP_FRAMES), "-keyint_min", str(GOP_FRAMES), "-sc_threshold", "0",
                        "-threads", "1", str(tmp)], check=True, timeout=1800)
        tmp.rename(clip)
    repeats = max(1, int(np.ceil(min_length_s / clip_s)))
    looped = cache_dir / f"{clip.stem}-x{repeats}.mp4"
    if not looped.is_file():
        make_long_file(clip, looped.with_suffix(".tmp.mp4"), repeats).rename(looped)
    return looped


# --- one camera --------------------------------------------------------------------------------------


def make_pipeline(camera_id: str, detector: OnnxDetector, keep_classes: set[str],
                  motion_gate: bool) -> CameraPipeline:
    """What the service builds for a camera: tracker and rule engine with a no-vending street and a bike box."""
    card_classes = dict(detector.card.violation_classes)
    zones = [Zone("street", "no_vending", [(0, 0.55), (1, 0.55), (1, 1), (0, 1)]),
             Zone("bike-box", "bike_parking", [(0.05, 0.6), (0.3, 0.6), (0.3, 0.95), (0.05, 0.95)])]
    score = detector.card.thresholds.track_score
    scores = {} if score is None else {"min_score": score}
    rules = [StallOccupationRule(StallRuleParams(**scores)), BikeMisparkedRule(BikeRuleParams(**scores))]
    engine = RuleEngine(camera_id, zones, rules, class_names=detector.class_names, class_map=card_classes)
    gate = MotionGate(MotionGateConfig()) if motion_gate else None
    return CameraPipeline(camera_id, detector, Tracker(tracker_config(detector)), engine, card_classes, keep_classes,
                          motion_gate=gate)


def tracker_config(detector: OnnxDetector) -> TrackerConfig:
    """The service's tracker for this model: built-in settings with the card's operating point, if it has one
    (`service.config.TrackerSettings.to_detector`)."""
    score = detector.card.thresholds.track_score
    return TrackerConfig() if score is None else TrackerConfig(high_score=score, new_track_score=score)


@dataclass
class CameraStats:
    """What one camera's feeder records (appended by one thread, read after it stopped)."""

    # (wall time finished, lag s, inference ms or 0 when the motion gate skipped the detector)
    finished: list[tuple[float, float, float]] = field(default_factory=list)
    # (wall time finished, {stage: CPU ms}) per sample
    stages: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    events: int = 0
    errors: list[str] = field(default_factory=list)


def feed_camera(source: RtspSource, pipeline: CameraPipeline, pool: concurrent.futures.Executor,
                stats: CameraStats, stop: threading.Event) -> None:
    """Read one camera's samples and run each through its pipeline on the pool, one at a time.

    Waiting for the sample's result before reading the next keeps the camera's pipeline in order and lets
    the source's own drop-oldest queue absorb overload, exactly as a service worker would.
    """

    def process(frame: Frame) -> None:
        step = pipeline.process(frame)
        now_s = time.time()
        stats.finished.append((now_s, now_s - frame.ts_s, step.inference_ms if step.inferred else 0.0))
        stats.stages.append((now_s, dict(step.stage_cpu_ms)))
        stats.events += len(step.events)

    while not stop.is_set():
        frame = source.read(timeout_s=0.5)
        if frame is None:
            continue
        try:
            pool.submit(process, frame).result()
        except Exception as exc:  # one broken sample must not end the run; it is reported
            stats.errors.append(f"{type(exc).__name__}: {exc}")


# --- measurement helpers -----------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_summary(samples: list[tuple[float, float]]) -> dict:
    values = [mb for _, mb in samples]
    slope = (float(np.polyfit([t / 60.0 for t, _ in samples], values, 1)[0]) if len(samples) >= 3 else None)
    return {"start_mb": round(values[0], 1), "end_mb": round(values[-1], 1), "max_mb": round(max(values), 1),
            "slope_mb_per_min": None if slope is None else round(slope, 2), "interval_samples": len(samples),
            "samples": [[round(t, 1), round(mb, 1)] for t, mb in samples]}


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of another process so far; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_totals(sources: list[RtspSource]) -> DecodeTotals:
    total = DecodeTotals()
    for source in sources:
        total = total.plus(source.decode_timing.snapshot())
    return total


def runner_cpu_s(detector: object) -> float:
    """CPU seconds a BatchingDetector's runners spent in session.run (0 without batching)."""
    return detector.stats().run_cpu_s if isinstance(detector, BatchingDetector) else 0.0


def stage_breakdown(stats: list[CameraStats], decoded: DecodeTotals, wall0: float, wall1: float, n: int,
                    cpu_total_s: float, batch_runner_cpu_s: float = 0.0) -> dict:
    """CPU milliseconds per camera-second in each stage over the window, and the CPU no stage accounts for."""
    window_s = wall1 - wall0
    sums = dict.fromkeys(("decode", *STAGES), 0.0)
    sums["decode"] = decoded.cpu_s * 1000
    sums["inference"] = batch_runner_cpu_s * 1000
    for cam in stats:
        for t, stage_ms in cam.stages:
            if wall0 <= t < wall1:
                for stage, ms in stage_ms.items():
                    sums[stage] += ms
    per_cam_s = {k: round(v / window_s / n, 2) for k, v in sums.items()}
    cpu_ms = cpu_total_s * 1000 / window_s / n
    processed = sum(1 for cam in stats for t, _ in cam.stages if wall0 <= t < wall1)
    return {"ms_per_camera_s": per_cam_s, "cpu_ms_per_camera_s": round(cpu_ms, 2),
            "other_ms_per_camera_s": round(cpu_ms - sum(per_cam_s.values()), 2),
            # Per processed sample: what a camera at 1 fps costs when every sample is processed (on an overloaded
            # machine samples are dropped, and per camera-second figures fall with them; decoding, paid for
            # dropped samples too, is counted in full here).
            "cpu_ms_per_sample": round(cpu_total_s * 1000 / processed, 2) if processed else None,
            "decode_wall_ms_per_camera_s": round((decoded.decode_s + decoded.convert_s) * 1000 / window_s / n, 2),
            "decoded_per_camera_s": round(decoded.decoded / window_s / n, 2),
            "converted_per_camera_s": round(decoded.converted / window_s / n, 2)}


# --- one run -----------------------------------------------------------------------------------------


def run_streams(n: int, duration_s: float, detector: OnnxDetector, video: Path, args: argparse.Namespace) -> dict:
    """Serve `n` cameras, run them for a warm-up plus `duration_s`, and return the measurements."""
    keep_classes = {c.strip() for c in args.keep_classes.split(",") if c.strip()}
    servers: list[RtspServer] = []
    sources: list[RtspSource] = []
    threads: list[threading.Thread] = []
    stats = [CameraStats() for _ in range(n)]
    stop = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="pipeline")
    try:
        for k in range(n):
            servers.append(RtspServer(video, mount=f"/cam{k}").start())
        for k, server in enumerate(servers):
            source = RtspSource(server.url, sample_fps=args.sample_fps, source_id=f"cam{k}").start()
            sources.append(source)
            pipeline = make_pipeline(f"cam{k}", detector, keep_classes, args.motion_gate)
            thread = threading.Thread(target=feed_camera, args=(source, pipeline, pool, stats[k], stop),
                                      name=f"feed-cam{k}", daemon=True)
            thread.start()
            threads.append(thread)
            # Real cameras are not phase-locked: spread their keyframes (and so their samples) over a second.
            time.sleep(1.0 / max(n, 1))

        # Warm-up: every camera delivered and finished a first sample (connect, first keyframe, first inference).
        warmup_deadline = time.monotonic() + args.warmup_timeout_s
        while time.monotonic() < warmup_deadline and not all(s.finished for s in stats):
            time.sleep(0.1)
        started_cameras = sum(1 for s in stats if s.finished)
        time.sleep(1.0)  # let the first-sample burst settle

        health0 = [s.health() for s in sources]
        decode0 = decode_totals(sources)
        runner0 = runner_cpu_s(detector)
        servers0 = sum(process_cpu_s(server.pid) for server in servers if server.pid)
        wall0, cpu0 = time.time(), cpu_s()
        rss: list[tuple[float, float]] = [(0.0, rss_mb())]
        next_rss_s = args.rss_interval_s
        while (elapsed_s := time.time() - wall0) < duration_s:
            time.sleep(min(0.5, max(0.0, duration_s - elapsed_s)))
            if time.time() - wall0 >= next_rss_s:
                rss.append((time.time() - wall0, rss_mb()))
                next_rss_s += args.rss_interval_s
        wall1, cpu1 = time.time(), cpu_s()
        decode1 = decode_totals(sources)
        runner1 = runner_cpu_s(detector)
        servers1 = sum(process_cpu_s(server.pid) for server in servers if server.pid)
        if wall1 - wall0 - rss[-1][0] > 1.0:
            rss.append((wall1 - wall0, rss_mb()))
        health1 = [s.health() for s in sources]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        pool.shutdown(wait=True)
        for source in sources:
            source.stop(timeout_s=2.0)
        for server in servers:
            server.stop()

    window_s = wall1 - wall0
    in_window = [[(t, lag, ms) for t, lag, ms in s.finished if wall0 <= t < wall1] for s in stats]
    lags = [lag for cam in in_window for _, lag, _ in cam]
    processed = sum(len(cam) for cam in in_window)
    expected = n * window_s * args.sample_fps
    missing_frac = max(0.0, 1.0 - processed / expected) if expected else 0.0
    dropped = sum(h1.frames_dropped - h0.frames_dropped for h0, h1 in zip(health0, health1))
    rejected = sum(h1.frames_rejected - h0.frames_rejected for h0, h1 in zip(health0, health1))
    reconnects = sum(h1.reconnects - h0.reconnects for h0, h1 in zip(health0, health1))
    inference_ms = [ms for cam in in_window for _, _, ms in cam if ms > 0]
    load1, load5, _ = os.getloadavg()
    p95 = percentile(lags, 95)
    result = {
        "n_streams": n,
        "window_s": round(window_s, 1),
        "cameras_started": started_cameras,
        "lag_s": {"p50": percentile(lags, 50), "p95": p95, "max": round(max(lags), 3) if lags else None},
        "samples": {"processed": processed, "expected": round(expected, 1), "missing_frac": round(missing_frac, 4),
                    "dropped": dropped, "rejected": rejected, "reconnects": reconnects,
                    "inferred": len(inference_ms), "errors": sum(len(s.errors) for s in stats)},
        "inference_ms": {"p50": percentile(inference_ms, 50), "p95": percentile(inference_ms, 95)},
        "cpu_per_stream_frac": round((cpu1 - cpu0) / window_s / n, 4),
        "cpu_total_cores": round((cpu1 - cpu0) / window_s, 3),
        "servers_cpu_cores": round((servers1 - servers0) / window_s, 3),
        "loadavg_end": [round(load1, 2), round(load5, 2)],
        "stages": stage_breakdown(stats, decode1.minus(decode0), wall0, wall1, n, cpu1 - cpu0, runner1 - runner0),
        "rss": rss_summary(rss),
        "violation_events": sum(s.events for s in stats),
        "first_errors": [e for s in stats for e in s.errors][:5],
    }
    result["meets_target"] = bool(started_cameras == n and p95 is not None and p95 <= TARGET_P95_LAG_S
                                  and missing_frac <= TARGET_MISSING_FRAC)
    return result


# --- report ------------------------------------------------------------------------------------------


def markdown(payload: dict) -> str:
    env, cfg = payload["environment"], payload["config"]
    smoke = cfg["duration_s"] < 60
    title = "# Live-stream capacity benchmark" + (" — SMOKE RUN (too short to quote)" if smoke else "")
    lines = [title + "\n",
             f"{env['date_utc']} · {env['cpu_model']} · {env['cpu_count']} cores · onnxruntime {env['onnxruntime']}"
             f" · model `{cfg['model']}` ({cfg.get('precision', 'fp32')}) · {cfg['workers']} workers (1 intra-op "
             f"thread each)" + ("" if not cfg.get("batching") else
                                f" · batching window {cfg['batching']['window_ms']:g} ms, "
                                f"{cfg['batching']['runners']} runners") + "\n",
             f"Each camera: RTSP over TCP from a GStreamer server process, {WIDTH_PX}x{HEIGHT_PX} {FPS} fps H.264, "
             f"1 s GOP ({cfg['footage']}); sampled at {cfg['sample_fps']:g} fps; full pipeline (shared detector, "
             f"tracker + rules per camera); motion gate {'on' if cfg['motion_gate'] else 'off'}. "
             f"Window {cfg['duration_s']:g} s per N after warm-up. Target: p95 lag ≤ {TARGET_P95_LAG_S:g} s and "
             f"≤ {TARGET_MISSING_FRAC * 100:g}% samples missing.\n"]
    rows = []
    for r in payload["runs"]:
        s, rss = r["samples"], r["rss"]
        rows.append([r["n_streams"], r["lag_s"]["p50"], r["lag_s"]["p95"], r["lag_s"]["max"],
                     f"{s['processed']}/{s['expected']:g}", f"{s['missing_frac'] * 100:.1f}%", s["inferred"],
                     s["dropped"], s["rejected"], r["inference_ms"]["p50"], f"{r['cpu_per_stream_frac'] * 100:.1f}%",
                     f"{rss['start_mb']}/{rss['end_mb']}/{rss['max_mb']}", rss["slope_mb_per_min"],
                     "yes" if r["meets_target"] else "no"])
    lines.append(md_table(["N", "lag p50 s", "lag p95 s", "lag max s", "samples done/expected", "missing",
                           "inferred", "dropped", "rejected", "inference p50 ms", "CPU/stream (1 core)",
                           "RSS start/end/max MB", "RSS MB/min", "meets target"], rows))
    staged = [r for r in payload["runs"] if r.get("stages")]
    if staged:
        names = ["decode", *STAGES]
        lines.append("\nWhere the CPU goes, core-milliseconds per camera-second (thread CPU time in each stage; see "
                     "the script's docstring), this process's CPU per camera-second, and the rest of the machine:\n")
        stage_rows = []
        for r in staged:
            st = r["stages"]
            stage_rows.append([r["n_streams"], *(st["ms_per_camera_s"].get(k, 0.0) for k in names),
                               st["other_ms_per_camera_s"], st["cpu_ms_per_camera_s"], st.get("cpu_ms_per_sample"),
                               f"{r['samples']['inferred']}/{r['samples']['processed']}", r["cpu_total_cores"],
                               r.get("servers_cpu_cores"), " / ".join(str(x) for x in r.get("loadavg_end", []))])
        lines.append(md_table(["N", *names, "other", "process CPU", "process CPU per processed sample",
                               "inferred/processed", "process cores",
                               "RTSP servers cores", "load 1/5 min"], stage_rows))
    if payload.get("max_streams") is not None or payload["mode"] == "find-max":
        lines.append(f"\n**Largest N meeting the target: {payload.get('max_streams')}**")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--find-max", action="store_true", help="step N over --steps and report the largest N")
    mode.add_argument("--soak-s", type=float, default=None, help="one long run at --n for the RSS check")
    parser.add_argument("--n", type=int, default=4, help="cameras for a single run or the soak")
    parser.add_argument("--steps", default="4,8,12,16,20,24", help="N values for --find-max")
    parser.add_argument("--keep-going", action="store_true", help="--find-max: run every step even after a failure")
    parser.add_argument("--duration-s", type=float, default=180.0, help="measurement window per N")
    parser.add_argument("--model", default="street", help="model name; falls back to yolox-nano-coco if absent")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="pipeline worker threads")
    parser.add_argument("--sample-fps", type=float, default=1.0)
    parser.add_argument("--motion-gate", action=argparse.BooleanOptionalAction, default=True,
                        help="gate inference with a MotionGate per camera (the service's default: on)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: the model's int8 copy where its card allows it (the service's default)")
    parser.add_argument("--batch-window-ms", type=float, default=None,
                        help="batch the cameras' frames through a BatchingDetector with this gather window")
    parser.add_argument("--batch-runners", type=int, default=2, help="BatchingDetector runner threads")
    parser.add_argument("--batch-max", type=int, default=8, help="BatchingDetector images per session.run")
    parser.add_argument("--keep-classes", default=DEFAULT_KEEP_CLASSES, help="pipeline classes tracked")
    parser.add_argument("--rss-interval-s", type=float, default=10.0)
    parser.add_argument("--warmup-timeout-s", type=float, default=60.0)
    parser.add_argument("--clip-s", type=float, default=60.0, help="seconds of footage transcoded (then looped)")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streetwatch")
    parser.add_argument("--results-dir", type=Path, default=common.RESULTS_DIR)
    parser.add_argument("--out-name", default="streams")
    args = parser.parse_args()

    reason = rtsp_server_unavailable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    model = args.model
    if not (REPO_ROOT / "models" / model).is_dir() and not Path(model).exists():
        print(f"model {model!r} not found under models/: using yolox-nano-coco", file=sys.stderr)
        model = "yolox-nano-coco"
    if args.find_max:
        plan = [int(n) for n in args.steps.split(",")]
        duration_s, mode_name = args.duration_s, "find-max"
    elif args.soak_s is not None:
        plan, duration_s, mode_name = [args.n], args.soak_s, "soak"
    else:
        plan, duration_s, mode_name = [args.n], args.duration_s, "single"

    # Every client gets the file from its start, so it must outlast warm-up plus the window.
    video = make_stream_file(args.cache_dir, args.clip_s, duration_s + args.warmup_timeout_s + 60.0)
    choice = choose_precision(model, args.precision)
    print(f"model {choice.name} ({choice.precision}: {choice.reason})", file=sys.stderr)
    detector = load_model(choice.name, options=RuntimeOptions(intra_op_threads=1))
    if args.batch_window_ms is not None:
        detector = BatchingDetector(detector, args.batch_window_ms, args.batch_max, args.batch_runners)

    runs, max_streams = [], None
    for n in plan:
        print(f"N={n}: running {duration_s:g} s ...", file=sys.stderr)
        result = run_streams(n, duration_s, detector, video, args)
        runs.append(result)
        print(f"N={n}: lag p95 {result['lag_s']['p95']} s, missing {result['samples']['missing_frac'] * 100:.1f}%,"
              f" CPU/stream {result['cpu_per_stream_frac'] * 100:.1f}%", file=sys.stderr)
        if result["meets_target"]:
            max_streams = n
        elif args.find_max and not args.keep_going:
            break

    payload = {
        "benchmark": "streams",
        "mode": mode_name,
        "smoke": duration_s < 60,
        "environment": environment(),
        "config": {"model": choice.name, "precision": choice.precision, "precision_reason": choice.reason,
                   "batching": None if args.batch_window_ms is None else {
                       "window_ms": args.batch_window_ms, "runners": args.batch_runners, "max_batch": args.batch_max,
                       "stats": vars(detector.stats()) if isinstance(detector, BatchingDetector) else None},
                   "workers": args.workers, "sample_fps": args.sample_fps,
                   "duration_s": duration_s, "motion_gate": args.motion_gate,
                   "keep_classes": sorted(c.strip() for c in args.keep_classes.split(",") if c.strip()),
                   "footage": f"people-walking.mp4, first {args.clip_s:g} s looped",
                   "stream": {"width_px": WIDTH_PX, "height_px": HEIGHT_PX, "fps": FPS, "gop_frames": GOP_FRAMES,
                              "transport": "tcp"},
                   "targets": {"p95_lag_s_max": TARGET_P95_LAG_S, "missing_frac_max": TARGET_MISSING_FRAC}},
        "runs": runs,
        "max_streams": max_streams if args.find_max else None,
    }
    common.RESULTS_DIR = args.results_dir  # write_results writes there
    json_path, md_path = common.write_results(args.out_name, payload, markdown(payload))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
