"""Headless Chromium (Debian's package, which CI installs) driven by Playwright for Python.

Playwright's own browser download cannot work without the network, so it is pointed at the
system's chromium; every request that would leave the machine is refused and recorded.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Debian's chromium (CI installs it)"
)
# Flags that keep a closed network's noise (update checks, sync, GPU probing) out of the run.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL = ("file:", "data:", "blob:", "about:")


@dataclass
class Session:
    page: object  # playwright.sync_api.Page
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    refused: list[str] = field(default_factory=list)  # every URL that would have left the machine


@contextmanager
def offline_page(width: int = 1400, height: int = 900) -> Iterator[Session]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
            session = Session(context.new_page())

            def route(route) -> None:
                if route.request.url.startswith(LOCAL):
                    route.continue_()
                else:
                    session.refused.append(route.request.url)
                    route.abort()

            context.route("**/*", route)
            session.page.on("console", lambda m: m.type == "error" and session.errors.append(m.text))
            session.page.on("pageerror", lambda e: session.errors.append(str(e)))
            yield session
        finally:
            browser.close()
