"""The documentation site: it builds with `mkdocs build --strict`, and every internal link and image of
every page resolves to a file of the built site (and to an element, where it names an anchor)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]


class _Page(HTMLParser):
    """The ids of a page and the URLs it refers to (href, src), with whether they load a resource."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name in ("href", "src") and value is not None:
                self.urls.append((tag, name, value))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the zoo page's diagrams are drawn by Graphviz' dot, as the diagram tests' are (conftest.py)
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz' dot is needed to build the site: apt-get install graphviz (.ci/run installs it)")
        pytest.skip("Graphviz' dot is not installed (apt-get install graphviz); CI builds the site")
    directory = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice about its successor
        timeout=600,  # a guard against a hang, not a time limit: the build takes seconds
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return directory


def _target(site: Path, page: Path, url: str) -> Path:
    path = unquote(urlsplit(url).path)
    target = (site / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    target = target.resolve()
    return target / "index.html" if target.is_dir() else target


def test_every_internal_link_and_image_resolves(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 15  # the guide's pages, the zoo and the API reference
    parsed = {page.resolve(): _parse(page) for page in pages}
    broken = []
    for page, content in parsed.items():
        for tag, attribute, url in content.urls:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue  # a link out of the site (checked below: none loads a resource)
            target = _target(site, page, url) if parts.path else page
            where = f"{page.relative_to(site.resolve())}: <{tag} {attribute}={url!r}>"
            if not target.is_file():
                broken.append(f"{where}: no file {target}")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where}: no element with id {parts.fragment!r}")
    assert not broken, "\n".join(broken)


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    """No web fonts, scripts, styles or images from elsewhere: the site works offline."""
    remote = []
    for page in site.rglob("*.html"):
        for tag, attribute, url in _parse(page).urls:
            loads = tag in ("script", "img", "link", "iframe", "source")  # a link tag's href is fetched too
            if loads and (urlsplit(url).scheme in ("http", "https") or url.startswith("//")):
                remote.append(f"{page.relative_to(site)}: <{tag} {attribute}={url!r}>")
    assert not remote, "\n".join(remote)


def test_the_zoo_page_lists_every_registered_model(site: Path) -> None:
    import neurlink

    text = (site / "zoo" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in neurlink.list_models() if f"<code>{name}</code>" not in text]
    assert not missing
    # resnet50's row: torchvision's parameters and GFLOPS (MACs), in this order
    assert re.search(r"<code>resnet50</code>.*?25,557,032.*?4\.09</td>", text, flags=re.DOTALL)


DIFF_OR_MERGE_MARKERS = re.compile(r"^(\+\+\+? |--- a/|@@ |<<<<<<< |=======$|>>>>>>> )", flags=re.MULTILINE)


def test_no_page_carries_a_diff_or_merge_leftover() -> None:
    """A stray ``++ b/README.md`` once reached the built performance page as text."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}: {m.group(0)!r}"
        for page in pages
        for m in DIFF_OR_MERGE_MARKERS.finditer(page.read_text())
    ]
    assert not found, found
