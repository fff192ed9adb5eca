/**
 * The real browser of the dashboard's tests and screenshots: Debian's chromium, driven by
 * playwright-core (which cannot download a browser of its own here), headless, in a fresh
 * profile directory removed on close.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium, type BrowserContext } from "playwright-core"
import { CHROMIUM } from "../../scripts/ensure-chromium.mjs"

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]

export interface Browser {
  readonly context: BrowserContext
  readonly close: () => Promise<void>
}

export const launchChromium = async (viewport = { width: 1280, height: 900 }): Promise<Browser> => {
  const profile = mkdtempSync(join(tmpdir(), "jobledger-chromium-"))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport })
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined)
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
