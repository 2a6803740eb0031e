"""Serve a video file over real RTSP (GStreamer's RTSP server) for tests, in a subprocess.

GstRtspServer's GObject bindings belong to Debian's ``/usr/bin/python3`` (packages ``python3-gi
python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad``), not to
the project's virtualenv, so this file is two things:

* run as a script by that interpreter, it is the server:
  ``/usr/bin/python3 tests/rtsp_server.py FILE.mp4 PORT /cam``;
* imported by tests, it gives `RtspServer`, which starts that script as a subprocess and can stop, kill,
  pause (a hung camera) and restart it on the same port (a camera that reboots), and the pytest fixture
  `rtsp_server` (import `rtsp_server_fixture` into a test module to use it), which skips with the apt
  packages to install when GStreamer's RTSP server is unavailable.

Each client gets its own pipeline from the start of the file (the media is not shared), so a reconnecting
reader sees the file again from its beginning. The file plays once per client; for longer streams serve a
longer file (`make_long_file` repeats one without re-encoding).

Example:
    >>> with RtspServer("footage.mp4") as server:  # doctest: +SKIP
    ...     url = server.url                      # rtsp://127.0.0.1:<port>/cam

    >>> from tests.rtsp_server import rtsp_server_fixture  # doctest: +SKIP
    >>> def test_camera(rtsp_server):  # doctest: +SKIP
    ...     server = rtsp_server("footage.mp4")
    ...     server.kill(); server.start()         # a camera losing power, back on the same port
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

try:  # the server side runs under Debian's python3, which may have no pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

SYSTEM_PYTHON = "/usr/bin/python3"
APT_PACKAGES = ("python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
                "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav")
_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "assert Gst.ElementFactory.find('qtdemux') and Gst.ElementFactory.find('rtph264pay')")


def rtsp_server_unavailable_reason() -> str | None:
    """None when GStreamer's RTSP server can run here, else a one-line reason naming the apt packages."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is absent: install {APT_PACKAGES} (scripts/install_system_deps.sh)"
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {SYSTEM_PYTHON}: {exc}"
    if probe.returncode != 0:
        last = (probe.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return f"GStreamer RTSP server unavailable ({last}): install {APT_PACKAGES} (scripts/install_system_deps.sh)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, host: str = "127.0.0.1", timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def make_long_file(src: Path | str, dst: Path | str, repeats: int) -> Path:
    """`src` played `repeats` times in a row, stream-copied (no re-encoding, seconds to make)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run([ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-stream_loop", str(repeats - 1), "-i", str(src),
                    "-c", "copy", "-an", str(dst)], check=True, timeout=120)
    return Path(dst)


class RtspServer:
    """A GStreamer RTSP server process serving one file at ``rtsp://127.0.0.1:<port>/cam``.

    Args:
        path: An H.264 mp4 file.
        port: TCP port; a free one when None. `restart()` reuses it.
        mount: The path part of the URL.
        ready_timeout_s: How long `start()` waits for the port to accept connections.
    """

    def __init__(self, path: Path | str, port: int | None = None, mount: str = "/cam", ready_timeout_s: float = 15.0):
        self.path = Path(path).resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.port = port or free_port()
        self.mount = mount
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> "RtspServer":
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._proc = subprocess.Popen([SYSTEM_PYTHON, __file__, str(self.path), str(self.port), self.mount],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
                self._proc = None
                raise RuntimeError(f"RTSP server exited at start: {err.splitlines()[-1] if err else 'no message'}")
            if port_accepts(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"RTSP server did not accept connections on port {self.port} in {self.ready_timeout_s} s")

    def stop(self) -> None:
        """Terminate the server (and wait for it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL the server, as a camera losing power: connections drop without an RTSP TEARDOWN."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self.stop()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open but no data flows (a hung camera)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> "RtspServer":
        """Stop if running, then start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if pytest is not None:

    @pytest.fixture(name="rtsp_server")
    def rtsp_server_fixture() -> Iterator[Callable[[Path | str], RtspServer]]:
        """Start servers for files, ``server = rtsp_server(path)``; all are stopped after the test."""
        reason = rtsp_server_unavailable_reason()
        if reason:
            pytest.skip(reason)
        servers: list[RtspServer] = []

        def start(path: Path | str) -> RtspServer:
            server = RtspServer(path).start()
            servers.append(server)
            return server

        yield start
        for server in servers:
            server.stop()


def _serve(path: str, port: str, mount: str) -> None:
    """The server itself; runs under Debian's python3 with GStreamer's GObject bindings."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    # config-interval=1 repeats SPS/PPS every second, as cameras do. (-1, "with every IDR", inserts them
    # before every IDR *slice*; FFmpeg's parser then splits a multi-slice keyframe into half frames.)
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse '
                       f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)  # every client gets its own pipeline, from the start of the file
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(f"usage: {SYSTEM_PYTHON} {os.path.basename(__file__)} FILE.mp4 PORT /mount")
    _serve(*sys.argv[1:])
