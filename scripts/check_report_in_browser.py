#!/usr/bin/env python
"""Render a skgradnorm ``report.html`` and its cluster pages in headless Chromium and check them.

Usage::

    python scripts/check_report_in_browser.py OUT_DIR/report.html [--screenshot page.png]
        [--page-screenshot cluster.png]

This script installs nothing. It needs a Chromium (or Chrome) binary on the PATH, e.g.
``apt-get update && apt-get install -y chromium`` on Debian, or ``--chromium PATH``; and
Pillow (a dependency of skgradnorm). It is not part of the test suite (CI does not depend
on apt). It checks:

1. the report as written (``--dump-dom``): the page has one section per cluster, every
   ``<img>`` has a ``data:image/`` source, the describing nouns are there, and there is no
   ``<script>``, no ``http`` outside the ``data:`` URIs, and every ``src``/``href`` is a
   ``data:`` URI, an anchor, or a relative link to a file inside the report's folder that
   exists;
2. that every thumbnail decodes in the browser: a temporary copy of the page gets a small
   script that records each image's ``naturalWidth`` on ``load``, and that copy's dumped DOM
   must show a width > 0 for every image (the report itself has no scripts);
3. every page linked from the report (the cluster pages under ``clusters/``, and the
   further pages they link to) passes the same checks 1 and 2, and, when the folder has a
   ``clusters.json``, the cluster pages together show one thumbnail per image;
4. the screenshot (``--window-size=1200,2000``) is not blank: enough non-background pixels
   and colours (and the same for the first cluster page with ``--page-screenshot``).

It prints what it found and exits with status 1 if a check fails. Chromium runs with the
network switched off (``--host-resolver-rules``), so a page that needed the network would
show missing pieces rather than fetch them.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
        self.links = []
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
            if value is None or value.startswith("data:") or value.startswith("#"):
                continue
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith("/"):
                self.external.append(f"<{tag} {key}={value[:60]!r}>")
            else:
                self.links.append(unquote(parts.path))

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


_DATA_URI = re.compile(r"data:[^\"'\s)]*")


def check_links(page: Path, dom: _DomScan, root: Path, failures: list, label: str) -> list[Path]:
    """The pages of the report folder that ``page`` links to; a failure for any other link."""
    targets = []
    for link in dom.links:
        target = (page.parent / link).resolve()
        if root != target and root not in target.parents:
            failures.append(f"{label}: link {link!r} leads outside the report folder")
        elif not target.is_file():
            failures.append(f"{label}: link {link!r} leads to a missing file")
        elif target.suffix == ".html":
            targets.append(target)
    return targets


def check_page(chromium, page: Path, root: Path, failures: list, *, main_page: bool):
    """Checks 1 and 2 on one page; returns (its DOM scan, thumbnails decoded, linked pages)."""
    label = page.relative_to(root).as_posix()
    raw = page.read_text(encoding="utf-8")
    if "http" in _DATA_URI.sub("", raw).lower():
        failures.append(f"{label}: contains 'http' outside its data: URIs")

    # 1. The page as written (the report itself: Chromium's DOM; other pages: its source).
    if main_page:
        proc = run_chromium(chromium, ["--dump-dom", page.as_uri()])
        if proc.returncode != 0 or "<body" not in proc.stdout:
            failures.append(
                f"{label}: chromium --dump-dom failed (exit {proc.returncode}): "
                f"{proc.stderr[-500:]}"
            )
        dom = scan(proc.stdout)
    else:
        dom = scan(raw)
    bad_src = [
        a.get("src", "")[:40] for a in dom.imgs if not a.get("src", "").startswith("data:image/")
    ]
    if dom.sections == 0:
        failures.append(f"{label}: no <section> (cluster) in the page")
    if bad_src:
        failures.append(
            f"{label}: {len(bad_src)} <img> without a data:image/ source: {bad_src[:3]}"
        )
    if dom.scripts:
        failures.append(f"{label}: {dom.scripts} <script> element(s)")
    if dom.external:
        failures.append(f"{label}: external references: {dom.external[:3]}")
    linked = check_links(page, dom, root, failures, label)

    # 2. Every thumbnail decodes: a probe copy records naturalWidth on load.
    with tempfile.TemporaryDirectory(prefix="skgradnorm-probe-") as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(raw.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        proc = run_chromium(chromium, ["--dump-dom", probe.as_uri()])
    probed = scan(proc.stdout)
    if probed.body.get("data-probe") != "done":
        failures.append(f"{label}: the probe page did not finish loading")
    sizes = [a.get("data-natural", "") for a in probed.imgs]
    decoded = [s for s in sizes if s and not s.startswith("0x")]
    if len(decoded) != len(sizes) or len(sizes) != len(dom.imgs):
        failures.append(f"{label}: only {len(decoded)} of {len(dom.imgs)} thumbnails decoded")
    return dom, decoded, linked


def check_screenshot(chromium, page: Path, shot: Path, window_size: str, failures: list):
    """Check 4: a screenshot of ``page`` at ``shot`` that is not blank."""
    import numpy as np
    from PIL import Image

    shot.parent.mkdir(parents=True, exist_ok=True)
    if shot.exists():
        shot.unlink()
    proc = run_chromium(
        chromium, [f"--screenshot={shot}", f"--window-size={window_size}", page.as_uri()]
    )
    if not shot.exists():
        failures.append(f"no screenshot written (exit {proc.returncode}): {proc.stderr[-500:]}")
        return
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
    pixels = np.asarray(rgb.resize((rgb.width // 4, rgb.height // 4))).reshape(-1, 3).astype(int)
    colours = len(np.unique(pixels, axis=0))
    share = float(np.mean(np.abs(pixels - pixels[0]).max(axis=1) > 24))
    std = float(np.asarray(rgb, dtype=float).std(axis=(0, 1)).mean())
    print(
        f"screenshot: {shot} ({rgb.width}x{rgb.height}), {colours} colours (1/4 scale), "
        f"{share:.1%} non-background pixels, mean std {std:.1f}"
    )
    if colours < 50 or share < 0.05:
        failures.append(f"the screenshot {shot.name} looks blank")


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
        "--page-screenshot",
        type=Path,
        default=None,
        help="also save a PNG of the first cluster page there (default: none)",
    )
    parser.add_argument(
        "--chromium", default=None, help="the Chromium binary (default: found on PATH)"
    )
    parser.add_argument("--window-size", default="1200,2000")
    args = parser.parse_args(argv)

    report = args.report.resolve()
    if not report.is_file():
        sys.exit(f"{report} is not a file")
    root = report.parent
    chromium = find_chromium(args.chromium)
    shot = (args.screenshot or report.with_name(report.stem + "-screenshot.png")).resolve()
    failures = []

    dom, decoded, linked = check_page(chromium, report, root, failures, main_page=True)
    print(
        f"report: {dom.sections} cluster sections, {len(dom.imgs)} <img> "
        f"({len(decoded)} decoded by Chromium), {len(dom.nouns)} noun labels, "
        f"{len(set(linked))} linked pages"
    )
    print(f"     first nouns: {', '.join(n.strip() for n in dom.nouns[:8])}")
    if not dom.imgs:
        failures.append("report.html: no <img> in the page")
    if not any(n.strip() for n in dom.nouns):
        failures.append("report.html: no describing nouns in the page")

    # 3. Every page reachable from the report.
    seen, queue, n_thumbs, n_decoded = {report}, list(dict.fromkeys(linked)), 0, 0
    while queue:
        page = queue.pop(0)
        if page in seen:
            continue
        seen.add(page)
        page_dom, page_decoded, more = check_page(chromium, page, root, failures, main_page=False)
        n_thumbs += len(page_dom.imgs)
        n_decoded += len(page_decoded)
        queue += [p for p in more if p not in seen]
    print(
        f"pages: {len(seen) - 1} linked pages checked, {n_thumbs} thumbnails there, "
        f"{n_decoded} decoded by Chromium"
    )
    doc_path = root / "clusters.json"
    if doc_path.is_file() and len(seen) > 1:
        n_images = json.loads(doc_path.read_text(encoding="utf-8")).get("n_images")
        if n_images is not None and n_thumbs != n_images:
            failures.append(f"the cluster pages show {n_thumbs} thumbnails for {n_images} images")

    # 4. The screenshots are not blank.
    check_screenshot(chromium, report, shot, args.window_size, failures)
    pages = [p for p in dict.fromkeys(linked) if p != report]  # the first cluster linked
    if args.page_screenshot and pages:
        check_screenshot(
            chromium, pages[0], args.page_screenshot.resolve(), args.window_size, failures
        )

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(
        "OK: the report and its pages render, every thumbnail decodes, every image has one, "
        "no scripts or references outside the folder."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
