"""The camera frame rates are written in one place, README's "Cameras: the edge counter": every
other page points there, so no two pages can disagree (README and docs/vision.md once gave
different numbers)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Cameras: the edge counter"
ANCHOR = "#cameras-the-edge-counter"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def _frame_rates() -> list[str]:
    """README's measured pairs, e.g. ``12.0 / 5.3``, from its frames-per-second paragraph."""
    cameras = _section(README.read_text(), SECTION)
    paragraph = cameras[cameras.index("Frames per second on one core") :].split("\n\n")[0]
    pairs = re.findall(r"\d+(?:\.\d+)? / \d+(?:\.\d+)?", paragraph)
    assert len(pairs) >= 4, paragraph  # hog and density, with and without flow
    return pairs


def test_frame_rates_are_in_readme_once_and_in_no_other_page():
    pairs = _frame_rates()
    readme = README.read_text()
    for pair in pairs:
        assert readme.count(pair) == 1, f"README repeats the frame rate {pair}: keep it once"
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert ROOT / "docs" / "vision.md" in pages
    for page in pages:
        text = page.read_text()
        repeated = [pair for pair in pairs if pair in text]
        assert not repeated, f"{page.name} repeats README's frame rates {repeated}: link instead"
        assert not re.search(r"\d\s*(?:frames/s|fps)\b", text), f"{page.name} gives a frame rate"


def test_the_pages_that_mention_speed_point_at_readmes_section():
    readme = README.read_text()
    assert SECTION in readme and f"]({ANCHOR})" in readme  # the benchmarks table links to it
    vision = (ROOT / "docs" / "vision.md").read_text()
    assert 'README ("Cameras: the edge counter")' in " ".join(_section(vision, "## Speed").split())
