#!/usr/bin/env python
"""Render a skgradnorm ``report.html`` in headless Chromium and check that it displays.

Usage::

    python scripts/check_report_in_browser.py OUT_DIR/report.html [--screenshot page.png]

This script installs nothing. It needs a Chromium (or Chrome) binary on the PATH, e.g.
``apt-get update && apt-get install -y chromium`` on Debian, or ``--chromium PATH``; and
Pillow (a dependency of skgradnorm). It is not part of the test suite (CI does not depend
on apt). It checks:

1. the report as written (``--dump-dom``): the page has one section per cluster, every
   ``<img>`` has a ``data:image/`` source, the describing nouns are there, and there is no
   ``<script>``, no external ``src``/``href`` and no ``http`` anywhere;
2. that every thumbnail decodes in the browser: a temporary copy of the page gets a small
   script that records each image's ``naturalWidth`` on ``load``, and that copy's dumped DOM
   must show a width > 0 for every image (the report itself has no scripts);
3. the screenshot (``--window-size=1200,2000``) is not blank: enough non-background pixels
   and colours.

It prints what it found and exits with status 1 if a check fails. Chromium runs with the
network switched off (``--host-resolver-rules``), so a page that needed the network would
show missing pieces rather than fetch them.
"""

from __future__ import annotations

import argparse
import html.parser
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=10000",
]

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img");
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute("data-natural", imgs[i].naturalWidth + "x" + imgs[i].naturalHeight);
  }
  document.body.setAttribute("data-probe", "done");
});
</script>"""


class _DomScan(html.parser.HTMLParser):
    """Collects the tags, attributes and noun texts of a dumped DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.imgs = []
        self.sections = 0
        self.scripts = 0
        self.external = []
        self.nouns = []
        self.body = {}
        self._in_noun = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag == "section":
            self.sections += 1
        elif tag == "script":
            self.scripts += 1
        elif tag == "body":
            self.body = a
        elif tag == "span" and "noun" in (a.get("class") or "").split():
            self._in_noun = True
            self.nouns.append("")
        for key in ("src", "href"):
            value = a.get(key)
            if value is not None and not (value.startswith("data:") or value.startswith("#")):
                self.external.append(f"<{tag} {key}={value[:60]!r}>")

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_noun = False

    def handle_data(self, data):
        if self._in_noun:
            self.nouns[-1] += data


def find_chromium(explicit=None) -> str:
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit(
        "No Chromium found. Install one (Debian: apt-get update && apt-get install -y chromium) "
        "or pass --chromium PATH."
    )


def run_chromium(chromium, args, timeout=120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="skgradnorm-chromium-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def scan(dom: str) -> _DomScan:
    s = _DomScan()
    s.feed(dom)
    return s


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report.html to check")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="where to save the PNG (default: next to the report)",
    )
    parser.add_argument(
        "--chromium", default=None, help="the Chromium binary (default: found on PATH)"
    )
    parser.add_argument("--window-size", default="1200,2000")
    args = parser.parse_args(argv)

    from PIL import Image

    report = args.report.resolve()
    if not report.is_file():
        sys.exit(f"{report} is not a file")
    chromium = find_chromium(args.chromium)
    shot = (args.screenshot or report.with_name(report.stem + "-screenshot.png")).resolve()
    failures = []
    raw = report.read_text(encoding="utf-8")
    if "http" in raw.lower():
        failures.append("the report contains 'http'")

    # 1. The report as written.
    proc = run_chromium(chromium, ["--dump-dom", report.as_uri()])
    if proc.returncode != 0 or "<body" not in proc.stdout:
        failures.append(
            f"chromium --dump-dom failed (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    dom = scan(proc.stdout)
    bad_src = [
        a.get("src", "")[:40] for a in dom.imgs if not a.get("src", "").startswith("data:image/")
    ]
    print(
        f"DOM: {dom.sections} cluster sections, {len(dom.imgs)} <img>, {len(dom.nouns)} noun labels"
    )
    print(f"     first nouns: {', '.join(n.strip() for n in dom.nouns[:8])}")
    if dom.sections == 0:
        failures.append("no <section> (cluster) in the page")
    if not dom.imgs:
        failures.append("no <img> in the page")
    if bad_src:
        failures.append(f"{len(bad_src)} <img> without a data:image/ source: {bad_src[:3]}")
    if dom.scripts:
        failures.append(f"the report has {dom.scripts} <script> element(s)")
    if dom.external:
        failures.append(f"external references: {dom.external[:3]}")
    if not any(n.strip() for n in dom.nouns):
        failures.append("no describing nouns in the page")

    # 2. Every thumbnail decodes: a probe copy records naturalWidth on load.
    with tempfile.TemporaryDirectory(prefix="skgradnorm-probe-") as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(raw.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        proc = run_chromium(chromium, ["--dump-dom", probe.as_uri()])
    probed = scan(proc.stdout)
    if probed.body.get("data-probe") != "done":
        failures.append("the probe page did not finish loading")
    sizes = [a.get("data-natural", "") for a in probed.imgs]
    decoded = [s for s in sizes if s and not s.startswith("0x")]
    print(
        f"decode: {len(decoded)} of {len(sizes)} thumbnails decoded by Chromium "
        f"(natural sizes seen: {sorted(set(decoded))[:6]})"
    )
    if len(decoded) != len(sizes) or len(sizes) != len(dom.imgs):
        failures.append(f"only {len(decoded)} of {len(dom.imgs)} thumbnails decoded")

    # 3. The screenshot is not blank.
    shot.parent.mkdir(parents=True, exist_ok=True)
    if shot.exists():
        shot.unlink()
    proc = run_chromium(
        chromium, [f"--screenshot={shot}", f"--window-size={args.window_size}", report.as_uri()]
    )
    if not shot.exists():
        failures.append(f"no screenshot written (exit {proc.returncode}): {proc.stderr[-500:]}")
    else:
        import numpy as np

        with Image.open(shot) as im:
            rgb = im.convert("RGB")
        pixels = (
            np.asarray(rgb.resize((rgb.width // 4, rgb.height // 4))).reshape(-1, 3).astype(int)
        )
        colours = len(np.unique(pixels, axis=0))
        share = float(np.mean(np.abs(pixels - pixels[0]).max(axis=1) > 24))
        std = float(np.asarray(rgb, dtype=float).std(axis=(0, 1)).mean())
        print(
            f"screenshot: {shot} ({rgb.width}x{rgb.height}), {colours} colours (1/4 scale), "
            f"{share:.1%} non-background pixels, mean std {std:.1f}"
        )
        if colours < 50 or share < 0.05:
            failures.append("the screenshot looks blank")

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: the report renders, every thumbnail decodes, no scripts or network references.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
