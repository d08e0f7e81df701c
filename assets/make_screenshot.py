"""Makes assets/screenshot.svg: the dashboard over the demo sandbox, headless, 140x34.

Run: python assets/make_screenshot.py
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from codexdash.demo import create_demo, stop_demo_jobs
from codexdash.ui.app import CodexdashApp

OUT = Path(__file__).resolve().parent / "screenshot.svg"


async def main() -> None:
    demo = create_demo()
    try:
        app = CodexdashApp(demo.engine, title="codexdash demo", cwd=str(demo.root / "work"), host="buildbox")
        async with app.run_test(size=(140, 34)) as pilot:
            await pilot.pause(6.0)  # let the demo jobs live a little: some end, some stream
            await pilot.press("down", "down", "down")
            await pilot.pause(1.5)
            app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    finally:
        stop_demo_jobs(demo)
        demo.store.close()
        shutil.rmtree(demo.root, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
