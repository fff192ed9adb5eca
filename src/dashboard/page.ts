/**
 * The dashboard's page: a fixed HTML shell whose style and script are inlined from
 * `assets/` (embedded in `assets.generated.ts` by scripts/embed-assets.mjs) and allowed by a per-response nonce (the Content-Security-Policy forbids every
 * other script and style). The only values put into the HTML are the CSRF token (URL-safe
 * base64) and the log URL, both escaped; job data reaches the page only as JSON that its
 * script renders as text.
 */
import { APP_CSS as CSS, APP_JS as JS } from "./assets.generated.ts"
import { contentSecurityPolicy, newSecret } from "./security.ts"

/** Text safe inside HTML text and double-quoted attributes. */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

/** A credential in a log URL (kafka://user:pass@host) is never shown. */
const withoutCredentials = (url: string): string => url.replace(/\/\/[^/@]*@/, "//***@")

export const renderPage = (options: { readonly csrf: string; readonly log: string }): { readonly html: string; readonly csp: string } => {
  const nonce = newSecret(16)
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="jobledger-csrf" content="${escapeHtml(options.csrf)}">
<meta name="jobledger-log" content="${escapeHtml(withoutCredentials(options.log))}">
<title>jobledger dashboard</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${CSS}</style>
</head>
<body>
<header class="top"><a href="#/" class="brand">jobledger</a><span class="log" id="log"></span><span class="live" id="live" data-testid="live">connecting…</span></header>
<main id="app" data-testid="app"><p class="muted">loading…</p></main>
<div id="toasts" class="toasts" aria-live="polite"></div>
<script nonce="${nonce}">${JS}</script>
</body>
</html>
`
  return { html, csp: contentSecurityPolicy(nonce) }
}

/** The page's weight in bytes (HTML shell with its inline style and script), for the README's measurement. */
export const pageBytes = (): { readonly html: number; readonly css: number; readonly js: number } => {
  const { html } = renderPage({ csrf: newSecret(), log: "sqlite:/x" })
  return { html: Buffer.byteLength(html), css: Buffer.byteLength(CSS), js: Buffer.byteLength(JS) }
}
