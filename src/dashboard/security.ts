/**
 * What keeps the dashboard to the people meant to use it.
 *
 * - Authentication (optional for a loopback-only dashboard, required beyond it): HTTP basic
 *   `user:pass`, or a bearer token (`bearer:TOKEN`) sent as `Authorization: Bearer TOKEN` — or,
 *   from a browser's login prompt, as the password of any user name.
 * - Actions change the queue, so a POST must prove it comes from our own page: it carries the
 *   per-process CSRF token the page was served with, and its Origin (else Referer) is the
 *   host it was sent to. A page of another site can make a browser send a POST, but can read
 *   neither the token nor forge the Origin.
 * - Host check (DNS rebinding): a dashboard on a loopback address only answers requests whose
 *   Host header names a loopback address, so a page of another site that re-points its own
 *   name at 127.0.0.1 gets nothing back.
 * - Every comparison of a secret is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { isIP } from "node:net"
import type { IncomingMessage } from "node:http"

/** The dashboard's authentication: HTTP basic credentials or a bearer token (see `parseAuth` for the string form). */
export type DashboardAuth = { readonly kind: "basic"; readonly user: string; readonly password: string } | { readonly kind: "bearer"; readonly token: string }

/** The environment variable `jobledger dashboard` reads the auth spec from. */
export const AUTH_ENV = "JOBLEDGER_DASHBOARD_AUTH"

/** `user:pass` (basic) or `bearer:TOKEN`; throws an Error saying what is wrong. */
export const parseAuth = (spec: string): DashboardAuth => {
  const text = spec.trim()
  if (text.startsWith("bearer:")) {
    const token = text.slice("bearer:".length)
    if (token.length < 16) throw new Error("a bearer token must be at least 16 characters (e.g. bearer:$(openssl rand -hex 16))")
    return { kind: "bearer", token }
  }
  const colon = text.indexOf(":")
  if (colon <= 0 || colon === text.length - 1) throw new Error("auth must be 'user:password' (basic) or 'bearer:TOKEN'")
  const password = text.slice(colon + 1)
  if (password.length < 8) throw new Error("a basic-auth password must be at least 8 characters")
  return { kind: "basic", user: text.slice(0, colon), password }
}

/** Constant-time equality of two strings (hashed first, so their lengths leak nothing either). */
export const secretEquals = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest())

/** True when the Authorization header satisfies `auth`. */
export const authorized = (auth: DashboardAuth, header: string | undefined): boolean => {
  if (header === undefined) return false
  const [scheme, value = ""] = header.trim().split(/\s+/, 2) as [string, string?]
  if (auth.kind === "bearer" && /^bearer$/i.test(scheme)) return secretEquals(value, auth.token)
  if (!/^basic$/i.test(scheme)) return false
  const decoded = Buffer.from(value, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return false
  const user = decoded.slice(0, colon)
  const password = decoded.slice(colon + 1)
  if (auth.kind === "bearer") return secretEquals(password, auth.token)
  // both compared, always: the time does not tell which one was wrong
  return secretEquals(user, auth.user) && secretEquals(password, auth.password)
}

/** The WWW-Authenticate challenge of a 401 (basic too for bearer: a browser then prompts for the token). */
export const challenge = (auth: DashboardAuth): string =>
  auth.kind === "basic" ? 'Basic realm="jobledger dashboard", charset="UTF-8"' : 'Bearer realm="jobledger dashboard", Basic realm="jobledger dashboard (token as password)", charset="UTF-8"'

/** True for names and addresses that stay on this machine. */
export const isLoopbackHost = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  if (h === "localhost" || h.endsWith(".localhost")) return true
  if (isIP(h) === 4) return h.startsWith("127.")
  if (isIP(h) === 6) return h === "::1" || h.startsWith("::ffff:127.")
  return false
}

/** The host part of a Host header value (`[::1]:3000` → `[::1]`, `a:80` → `a`). */
export const hostOf = (hostHeader: string): string => {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(hostHeader.trim())
  return (m?.[1] ?? hostHeader).toLowerCase()
}

/**
 * Why a state-changing request is refused (undefined: it is ours): the CSRF token must be
 * the page's and the Origin (else the Referer) must be the Host the request was sent to.
 */
export const csrfRefusal = (req: IncomingMessage, token: string): string | undefined => {
  const given = req.headers["x-jobledger-csrf"]
  if (typeof given !== "string" || !secretEquals(given, token)) return "missing or wrong CSRF token (actions are sent by the dashboard's page, which carries it)"
  const host = req.headers.host
  if (host === undefined) return "no Host header"
  const source = req.headers.origin ?? req.headers.referer
  if (typeof source !== "string" || source === "null") return "no Origin or Referer header: cannot tell where the request comes from"
  let origin: URL
  try {
    origin = new URL(source)
  } catch {
    return "malformed Origin header"
  }
  if ((origin.protocol !== "http:" && origin.protocol !== "https:") || origin.host.toLowerCase() !== host.toLowerCase())
    return `cross-origin request refused (Origin ${origin.origin} is not this dashboard's, ${host})`
  return undefined
}

/** A random secret for this process: the CSRF token, a page's nonce. */
export const newSecret = (bytes = 24): string => randomBytes(bytes).toString("base64url")

/**
 * The page's Content-Security-Policy: scripts and styles only from the page's own nonce'd
 * elements (no inline handler, no `javascript:` URL, no script from anywhere else), data only
 * from this origin, nothing framed, no form posting elsewhere.
 */
export const contentSecurityPolicy = (nonce: string): string =>
  [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'"
  ].join("; ")
