"""The README's console pictures, taken from a running console (`rapport demo --serve`):

    .venv/bin/python -m devtools.demo.screenshots SIGN_IN_LINK [docs]

Signs in with the link (it is then spent), and saves the caseload and the first client's page
at phone and desktop width, with Debian's Chromium (`RAPPORT_CHROMIUM` to use another).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from playwright.async_api import async_playwright

SIZES = {"phone": (390, 844), "desktop": (1280, 900)}


async def take(link: str, folder: Path) -> None:
    base = link.split("/signin/", 1)[0]
    chromium = os.environ.get("RAPPORT_CHROMIUM", "/usr/bin/chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(link)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/caseload")
        first = await page.locator("tbody th a").first.get_attribute("href")
        for name, (width, height) in SIZES.items():
            await page.set_viewport_size({"width": width, "height": height})
            await page.goto(f"{base}/caseload")
            await page.screenshot(path=folder / f"console-caseload-{name}.png", full_page=True)
            await page.goto(f"{base}{first}")
            await page.screenshot(path=folder / f"console-client-{name}.png", full_page=True)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(take(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "docs")))
