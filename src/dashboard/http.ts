/**
 * The dashboard's HTTP answers: JSON, text, and errors that say why without a stack.
 *
 * Invariants:
 * - Every answer carries the same defensive headers (no sniffing, no framing, no caching,
 *   no referrer beyond this origin); the page adds its Content-Security-Policy itself.
 * - An error answer is `{ "error": reason }` with the status its HttpError gives; anything
 *   else thrown is a 500 "internal error" whose details go to the server's log, never to
 *   the client.
 */
import type { ServerResponse } from "node:http"

/** A request the dashboard refuses, with the status and a reason meant for the client. */
export class HttpError extends Error {
  override readonly name = "HttpError"
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {}
  ) {
    super(message)
  }
}

export const badRequest = (reason: string) => new HttpError(400, reason)
export const notFound = (reason = "not found") => new HttpError(404, reason)

export const BASE_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store"
}

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...BASE_HEADERS, ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

export const sendText = (res: ServerResponse, status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): void => {
  res.writeHead(status, { ...BASE_HEADERS, ...headers, "content-type": contentType, "content-length": Buffer.byteLength(body) })
  res.end(body)
}

/** Answers `error`: its own status and reason for an HttpError, else a 500 without details (reported). */
export const sendError = (res: ServerResponse, error: unknown, report: (e: unknown) => void): void => {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (error instanceof HttpError) sendJson(res, error.status, { error: error.message }, error.headers)
  else {
    report(error)
    sendJson(res, 500, { error: "internal error (see the dashboard's log)" })
  }
}
