"""Chinese text on the review page: the CSS names a CJK font stack, the install script installs a CJK font, and
(where a CJK font is installed) Chromium draws zh-CN with real glyphs, not boxes.

The browser check launches the system /usr/bin/chromium by path (as tests/service/test_review_page.py does) and
skips with a reason when it, the playwright package or a CJK font (``fc-list :lang=zh``) is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STYLE = ROOT / "service" / "web" / "style.css"
INSTALL = ROOT / "scripts" / "install_system_deps.sh"
CHROMIUM = Path("/usr/bin/chromium")
CJK_STACK = ['"Noto Sans CJK SC"', '"WenQuanYi Micro Hei"', '"PingFang SC"', '"Microsoft YaHei"', "sans-serif"]


def _body_font_families(css: str) -> list[str]:
    rule = re.search(r"(?m)^body\s*\{([^}]*)\}", css)
    assert rule, "style.css has no body rule"
    font = re.search(r"font:\s*[\d.]+px(?:/[\d.]+)?\s+([^;]+);", rule.group(1))
    assert font, "the body rule sets no font shorthand"
    return [family.strip() for family in font.group(1).split(",")]


def test_the_page_names_the_cjk_font_stack_in_order():
    families = _body_font_families(STYLE.read_text(encoding="utf-8"))
    positions = [families.index(name) for name in CJK_STACK]  # ValueError names a missing family
    assert positions == sorted(positions) and families[-1] == "sans-serif", families


def test_the_install_script_installs_a_cjk_font():
    text = INSTALL.read_text(encoding="utf-8")
    packages = re.search(r"(?s)PACKAGES=\((.*?)\)", text)
    assert packages and "fonts-noto-cjk" in packages.group(1).split()


def _cjk_font_installed() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30)
    return listed.returncode == 0 and bool(listed.stdout.strip())


# Two different characters drawn on a canvas with the page's own font: with no CJK font both come out as the
# same "tofu" box (or nothing), with one they differ. Comparing the two needs no reference image.
_DRAW = """(chars) => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.font = '48px ' + getComputedStyle(document.body).fontFamily;
  return chars.map((ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.fillStyle = '#000';
    ctx.fillText(ch, 4, 52);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 === 3)).join(',');
  });
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (scripts/install_system_deps.sh)")
@pytest.mark.skipif(not _cjk_font_installed(), reason="no CJK font installed (fc-list :lang=zh is empty; "
                                                      "scripts/install_system_deps.sh installs fonts-noto-cjk)")
def test_chromium_draws_chinese_with_a_cjk_font():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is missing")
    css = STYLE.read_text(encoding="utf-8")
    html = f'<!doctype html><html lang="zh-CN"><head><style>{css}</style></head><body>漕溪北路</body></html>'
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            page.set_content(html)
            caoxi, lu, blank = page.evaluate(_DRAW, ["漕", "路", " "])
        finally:
            browser.close()
    ink = [sum(int(a) > 0 for a in alpha.split(",")) for alpha in (caoxi, lu, blank)]
    assert ink[2] == 0 and ink[0] > 50 and ink[1] > 50, ink  # the canvas works and both glyphs leave ink
    assert caoxi != lu, "漕 and 路 render identically: boxes (tofu), not glyphs"
