// Types for scripts/ensure-chromium.mjs (so the TypeScript browser test can import it).

export declare const CHROMIUM: string

/** `{ path }` when /usr/bin/chromium is there (installed now if need be, as root), else `{ reason }`. */
export declare const ensureChromium: () => { path: string; reason?: undefined } | { path?: undefined; reason: string }
