"""The executor of ``kind: browser`` steps: Playwright (async API) driving Chromium.

One browser per worker process, launched at the first browser step (Playwright is imported
only then, so a worker that runs only http steps starts fast and never loads it). One
fresh BrowserContext and page per investigation, kept across its browser steps so a login
in one step holds in the next; ``close()`` ends them all.

Chromium comes from ``CASTRA_CHROMIUM_PATH`` (default ``/usr/bin/chromium``); the worker
never downloads a browser. A fill's value never appears in an error message.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from core.models import (
    BrowserAction,
    BrowserStep,
    ClickAction,
    ExtractAction,
    FillAction,
    GotoAction,
    ScreenshotAction,
    WaitForAction,
    WaitForSpec,
)
from worker_runtime.steps import StepError, StepRun, check_url
from worker_runtime.templates import render

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Locator, Page, Playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ACTION_TIMEOUT = 15.0  # seconds for fill, click and extract to find their element
NAVIGATION_TIMEOUT = 30.0


def _reason(exc: Exception) -> str:
    # Playwright messages read "Locator.click: <reason>\nCall log: ..."; keep the reason.
    line = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0]
    head, sep, rest = line.partition(": ")
    return rest if sep and "." in head and " " not in head else line


class BrowserExecutor:
    def __init__(
        self, chromium_path: str | None = None, *, action_timeout: float = ACTION_TIMEOUT
    ) -> None:
        self.action_timeout = action_timeout
        self.chromium_path = chromium_path or os.environ.get(
            "CASTRA_CHROMIUM_PATH", "/usr/bin/chromium"
        )
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None

    async def _open_page(self) -> Page:
        if self._browser is None:
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
            try:
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.chromium_path, headless=True, args=CHROMIUM_ARGS
                )
            except Exception as exc:
                await self.close()
                raise StepError(
                    f"cannot start Chromium ({self.chromium_path}): {_reason(exc)}"
                ) from None
        if self._context is None:
            self._context = await self._browser.new_context(accept_downloads=False)
        if self._page is None or self._page.is_closed():
            self._page = await self._context.new_page()
        return self._page

    async def close(self) -> None:
        # Each part separately: a dead browser must not keep the driver process alive.
        for closer in (
            self._context.close if self._context else None,
            self._browser.close if self._browser else None,
            self._playwright.stop if self._playwright else None,
        ):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        self._playwright = self._browser = self._context = self._page = None

    async def run(self, step: BrowserStep, run: StepRun) -> None:
        page = await self._open_page()
        for action in step.actions:
            await self._act(page, action, run)

    async def _act(self, page: Page, action: BrowserAction, run: StepRun) -> None:
        from playwright.async_api import Error as PlaywrightError

        ctx = run.context
        label = type(action).__name__
        try:
            if isinstance(action, GotoAction):
                url = render(action.goto, ctx)
                label = f"goto {url!r}"
                check_url(url, run.credential, "goto")
                await page.goto(url, timeout=NAVIGATION_TIMEOUT * 1000)
            elif isinstance(action, FillAction):
                selector = render(action.fill.selector, ctx)
                label = f"fill {selector!r}"
                value = render(action.fill.value, ctx)
                await self._on_element(page, selector, label, "fill", value)
            elif isinstance(action, ClickAction):
                selector = render(action.click, ctx)
                label = f"click {selector!r}"
                await self._on_element(page, selector, label, "click")
            elif isinstance(action, WaitForAction):
                spec = action.wait_for
                if isinstance(spec, str):
                    spec = WaitForSpec(selector=spec)
                timeout = spec.timeout_seconds
                selector = render(spec.selector, ctx)
                label = f"wait_for {selector!r}"
                try:
                    await page.wait_for_selector(selector, state="visible", timeout=timeout * 1000)
                except PlaywrightError as exc:
                    if _is_timeout(exc):
                        raise StepError(f"{label}: timed out after {timeout:g}s") from None
                    raise
            elif isinstance(action, ExtractAction):
                spec_x = action.extract
                selector = render(spec_x.selector, ctx)
                label = f"extract {spec_x.name!r} from {selector!r}"
                element = await self._find(page, selector, label)
                if spec_x.attribute:
                    run.outputs[spec_x.name] = await element.get_attribute(spec_x.attribute)
                else:
                    run.outputs[spec_x.name] = (await element.inner_text()).strip()
            elif isinstance(action, ScreenshotAction):
                label = f"screenshot {action.screenshot.name!r}"
                data = await page.screenshot(full_page=action.screenshot.full_page, type="png")
                ref = await run.upload(action.screenshot.name, "image/png", data)
                run.artifacts.append(ref)
        except PlaywrightError as exc:
            raise StepError(f"{label}: {_reason(exc)}") from None

    async def _find(self, page: Page, selector: str, label: str) -> Locator:
        from playwright.async_api import Error as PlaywrightError

        element = page.locator(selector).first
        try:
            await element.wait_for(state="attached", timeout=self.action_timeout * 1000)
        except PlaywrightError as exc:
            if _is_timeout(exc):
                raise StepError(
                    f"{label}: no such element (waited {self.action_timeout:g}s)"
                ) from None
            raise
        return element

    async def _on_element(
        self, page: Page, selector: str, label: str, verb: str, value: str | None = None
    ) -> None:
        from playwright.async_api import Error as PlaywrightError

        element = await self._find(page, selector, label)
        try:
            if verb == "fill":
                await element.fill(value or "", timeout=self.action_timeout * 1000)
            else:
                await element.click(timeout=self.action_timeout * 1000)
        except PlaywrightError as exc:
            if _is_timeout(exc):
                raise StepError(
                    f"{label}: the element is not {'editable' if verb == 'fill' else 'clickable'}"
                    f" (waited {self.action_timeout:g}s)"
                ) from None
            raise


def _is_timeout(exc: Exception) -> bool:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    return isinstance(exc, PlaywrightTimeout)
