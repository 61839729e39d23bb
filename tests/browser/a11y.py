"""Accessibility, measured in the browser tests: axe-core run on a page as it stands, and the
keyboard alone on a narrow screen.

axe-core comes from the npm registry at test time, never from git: the pinned version's tarball
is fetched once with ``npm pack`` into ``var/test-cache/`` (gitignored; ``AXE_CACHE`` overrides
the folder), its SHA-512 checked against the registry's ``dist.integrity`` pinned below (on every
use, so a cached file that changed is fetched again), and ``package/axe.min.js`` read from it.
Without npm or the registry the test fails and says so; nothing is skipped.

The pages run under the hub's Content-Security-Policy (no inline script), so axe is not added
as a ``<script>`` element: its source is evaluated through the DevTools protocol
(``page.evaluate``), which the policy does not govern, and ``axe.run`` is called the same way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from playwright.sync_api import Page

#: the pinned axe-core and the npm registry's integrity of its tarball
#: (`npm view axe-core@4.14.1 dist.integrity`)
AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "sha512-" + (
    "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
ROOT = Path(__file__).resolve().parents[2]
AXE_CACHE = Path(os.environ.get("AXE_CACHE", ROOT / "var" / "test-cache"))
#: WCAG 2.0 and 2.1, levels A and AA
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: impacts that fail a test; moderate and minor ones are printed
FAILING = {"serious", "critical"}
#: rules turned off, each with its reason (none so far)
DISABLED_RULES: dict[str, str] = {}

_RUN = """async ([tags, disabled, within]) => {
  const rules = Object.fromEntries(disabled.map((id) => [id, { enabled: false }]));
  const context = within ? { include: [within] } : document;
  const result = await axe.run(context, {
    runOnly: { type: "tag", values: tags }, rules, resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.join(" "), impact: n.impact, summary: n.failureSummary,
    })),
  }));
}"""


class AxeUnavailable(RuntimeError):
    """axe-core could not be had from the npm registry (or did not match its integrity)."""


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _fetch(tarball: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AxeUnavailable("npm is not installed: the accessibility tests fetch axe-core with it")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
        pack = ["pack", f"axe-core@{AXE_VERSION}", "--pack-destination", scratch]
        try:
            done = subprocess.run(
                [npm, *pack, "--loglevel=error"],
                capture_output=True,
                text=True,
                timeout=180,
                cwd=scratch,
            )
        except subprocess.TimeoutExpired as e:
            raise AxeUnavailable(f"npm pack axe-core@{AXE_VERSION} timed out: {e}") from e
        fetched = Path(scratch) / tarball.name
        if done.returncode != 0 or not fetched.exists():
            raise AxeUnavailable(
                f"could not fetch axe-core@{AXE_VERSION} from the npm registry "
                f"(npm pack exited {done.returncode}):\n{done.stderr.strip()[:1500]}"
            )
        fetched.replace(tarball)  # atomic: a parallel run sees the whole file or none


@functools.cache
def axe_source() -> str:
    """``axe.min.js`` of the pinned axe-core, fetched once and checked against its integrity."""
    tarball = AXE_CACHE / f"axe-core-{AXE_VERSION}.tgz"
    if not tarball.exists() or _integrity(tarball.read_bytes()) != AXE_INTEGRITY:
        _fetch(tarball)
    data = tarball.read_bytes()
    if (found := _integrity(data)) != AXE_INTEGRITY:
        tarball.unlink()
        raise AxeUnavailable(
            f"axe-core@{AXE_VERSION} from the registry has integrity {found}, "
            f"not the pinned {AXE_INTEGRITY}"
        )
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None
        return member.read().decode()


def _format(violation: dict[str, object]) -> str:
    nodes = violation["nodes"]
    assert isinstance(nodes, list)
    head = f"  {violation['impact']} {violation['id']}: {violation['help']}"
    lines = [f"{head} ({violation['helpUrl']})"]
    for node in nodes[:8]:
        why = [w.strip() for w in str(node["summary"]).splitlines() if w.startswith("  ")]
        lines.append(f"    at {node['target']}: {'; '.join(why)}")
    if len(nodes) > 8:
        lines.append(f"    … and {len(nodes) - 8} more")
    return "\n".join(lines)


def axe_violations(page: Page, within: str | None = None) -> list[dict[str, object]]:
    """axe-core's WCAG 2.1 A and AA violations on ``page`` (or within the ``within`` selector)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found: list[dict[str, object]] = page.evaluate(_RUN, [WCAG_TAGS, list(DISABLED_RULES), within])
    return found


def assert_accessible(page: Page, context: str, *, within: str | None = None) -> None:
    """No serious or critical axe-core violation on ``page`` as it stands (``context`` names the
    page state in the failure); moderate and minor ones are printed and do not fail."""
    found = axe_violations(page, within)
    failing = [v for v in found if v["impact"] in FAILING]
    other = [v for v in found if v["impact"] not in FAILING]
    if other:
        print(f"axe-core on {context}: {len(other)} moderate or minor")
        print("\n".join(map(_format, other)))
    assert not failing, f"axe-core on {context}: serious or critical violations\n" + "\n".join(
        map(_format, failing)
    )


# -- the keyboard alone, on a narrow screen ---------------------------------------------------

_FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const ringed = style.boxShadow && style.boxShadow !== "none";
  const box = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || el.value || "").slice(0, 40),
    visible: outlined || ringed, focusVisible: el.matches(":focus-visible"),
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.left < innerWidth,
  };
}"""


def focused_matches(page: Page, selector: str) -> bool:
    """Whether the focused element is the (first) one ``selector`` finds."""
    return bool(
        page.evaluate(
            "(s) => { const el = document.querySelector(s);"
            " return !!el && el === document.activeElement; }",
            selector,
        )
    )


def assert_focus_visible(page: Page) -> None:
    """The focused element shows it (an outline or a ring under ``:focus-visible``) on screen."""
    focus = page.evaluate(_FOCUS)
    assert focus is not None, "nothing has the focus"
    assert focus["focusVisible"], f"the focus is not :focus-visible on {focus}"
    assert focus["visible"], f"the focus shows no outline or ring on {focus}"
    assert focus["onScreen"], f"the focused element is off screen: {focus}"


def tab_to(page: Page, selector: str, *, limit: int = 40) -> None:
    """Press Tab (only) until ``selector``'s element has the focus, the focus visible at every
    stop; fails when it is not reached in ``limit`` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(_FOCUS) is not None:
            assert_focus_visible(page)
        if focused_matches(page, selector):
            return
    raise AssertionError(f"{selector} was not reached with Tab in {limit} presses")


def assert_keyboard_reachable(page: Page, selectors: list[str], *, limit: int = 60) -> None:
    """Every one of ``selectors`` gets the focus by Tab alone from the top of the page, in
    that order, with the focus visible at every stop."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    for selector in selectors:
        tab_to(page, selector, limit=limit)


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than its viewport (nothing to scroll sideways)."""
    width, viewport = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert width <= viewport, f"the page is {width} px wide in a {viewport} px viewport"
