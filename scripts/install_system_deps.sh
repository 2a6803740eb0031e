#!/usr/bin/env bash
# Debian/Ubuntu packages the test suite needs beyond pip:
#   - GStreamer's RTSP server and its Python bindings (tests/rtsp_server.py serves footage over real RTSP;
#     the bindings belong to the system /usr/bin/python3, not to the virtualenv),
#   - ffmpeg (making looped/transcoded test streams),
#   - chromium (the review page's browser test drives it through Playwright; without it that test skips),
#   - fonts-noto-cjk (a Chinese font: without one Chromium draws the zh-CN review page and its screenshots as
#     boxes; Noto Sans CJK SC heads the page's font stack. Chosen over the smaller fonts-wqy-microhei (about 5 MB
#     against 90) because it is maintained, is Debian's default CJK font and covers the rarer characters of
#     street names and addresses; the page's CSS names WenQuanYi Micro Hei as well, for hosts that have it),
#   - postgresql, server and client (scripts/test.sh starts a throw-away cluster with scripts/pg_test_server.sh
#     so that the store tests run on PostgreSQL as well as SQLite; without it scripts/test.sh fails),
#   - mosquitto (the MQTT outbox adapter is tested against a real broker the tests start on loopback),
#   - opencv-data (OpenCV's Haar cascade files: service.privacy blurs faces and plates with them; OpenCV 5 wheels
#     no longer ship them; without them evidence is not served, 503, unless privacy.blur_faces/blur_plates are
#     off).
# Idempotent: installs only what is missing, uses sudo only when not root. Without these packages the
# RTSP tests skip with a reason naming them; everything else still runs.
set -euo pipefail

PACKAGES=(
  python3-gi
  python3-gst-1.0
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  ffmpeg
  chromium
  fonts-noto-cjk
  postgresql
  mosquitto
  opencv-data
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_system_deps: not a Debian/Ubuntu system; install the equivalents of: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_system_deps: all present (${#PACKAGES[@]} packages)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install_system_deps: not root and no sudo; as root run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install_system_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
