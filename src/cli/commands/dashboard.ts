/**
 * `jobledger dashboard`: serves the web dashboard (and `/metrics`) of the queues on a log
 * until SIGINT or SIGTERM.
 *
 * Invariants:
 * - Safe by default: it binds to 127.0.0.1 and then answers only requests addressed to a
 *   loopback name (DNS rebinding). Any other `--host` is refused unless authentication is
 *   given (`--auth`, `--auth-file` or JOBLEDGER_DASHBOARD_AUTH): exit 2, nothing listens.
 * - Read-only views create nothing: a SQLite path with no log and a `--queue` that does not
 *   exist are errors (exit 1), as for `jobledger stats`.
 * - "dashboard ready: http://host:port/ log=…" is printed (stderr) once it listens, with the
 *   port the system chose for `--port 0`: scripts may wait for it.
 */
import { readFileSync } from "node:fs"
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError, messageOf } from "../errors.ts"

const DEFAULT_PORT = 3000
const DEFAULT_HOST = "127.0.0.1"

/** The auth spec from --auth, --auth-file or the environment (in that order); undefined: none. */
const authSpec = (inline: string | undefined, file: string | undefined, env: string | undefined): string | undefined => {
  if (inline !== undefined && file !== undefined) throw new UsageError("give --auth or --auth-file, not both")
  if (inline !== undefined) return inline
  if (file !== undefined) {
    try {
      return readFileSync(file, "utf8").trim()
    } catch (e) {
      throw new UsageError(`--auth-file ${file}: ${messageOf(e)}`)
    }
  }
  return env === undefined || env.trim() === "" ? undefined : env.trim()
}

export const dashboard: CommandSpec = {
  name: "dashboard",
  summary: "serve the web dashboard and /metrics of a log's queues",
  description: [
    "Serves a web dashboard of every queue on the log (or only the --queue ones): counts by",
    "state updating live, throughput and failure rate, job lists, each job's timeline from the",
    "log, time travel (the queue as of a time or an offset) and replay --verify, and retry,",
    "pause and resume (confirmed in the page, sent as commands on the log). /metrics serves",
    "Prometheus metrics. Prints 'dashboard ready: <url> log=…' on stderr once it listens.",
    "",
    "It binds to 127.0.0.1 by default. Another --host (e.g. 0.0.0.0) needs authentication:",
    "--auth user:password (HTTP basic) or --auth bearer:TOKEN, or the same in --auth-file <path>",
    "or in $JOBLEDGER_DASHBOARD_AUTH (so it stays off the command line)."
  ].join("\n"),
  positionals: [],
  options: {
    port: { type: "string", short: "p", value: "<port>", description: `the TCP port (default: ${DEFAULT_PORT}; 0: any free port)` },
    host: { type: "string", value: "<address>", description: `the address to bind (default: ${DEFAULT_HOST}; others need --auth)` },
    auth: { type: "string", value: "<user:pass|bearer:TOKEN>", description: "require HTTP basic auth or a bearer token" },
    "auth-file": { type: "string", value: "<path>", description: "read the --auth value from this file" },
    queue: { type: "string", short: "q", multiple: true, value: "<name>", description: "show only this queue (repeatable; default: every queue on the log)" }
  },
  json: false,
  examples: [
    "jobledger dashboard --log sqlite:./.jobledger/jobs.db",
    "JOBLEDGER_DASHBOARD_AUTH=admin:s3cret-pass jobledger dashboard --host 0.0.0.0 --port 8080 --log kafka://localhost:9092"
  ],
  run: async ({ args, log, out }) => {
    const port = args.number("port", { min: 0, integer: true }) ?? DEFAULT_PORT
    if (port > 65_535) throw new UsageError(`--port must be a whole number from 0 to 65535 (got '${args.string("port")}')`)
    const host = args.string("host") ?? DEFAULT_HOST
    const [{ isLoopbackHost, parseAuth, AUTH_ENV }, { createDashboard }, { requireExistingLog, requireQueue, ensureReachable, nextSignal }, { createServer }] = await Promise.all([
      import("../../dashboard/security.ts"),
      import("../../dashboard/dashboard.ts"),
      import("../connect.ts"),
      import("node:http")
    ])
    const spec = authSpec(args.string("auth"), args.string("auth-file"), process.env[AUTH_ENV])
    let auth
    try {
      auth = spec === undefined ? undefined : parseAuth(spec)
    } catch (e) {
      throw new UsageError(`auth: ${messageOf(e)}`)
    }
    const loopback = isLoopbackHost(host)
    if (!loopback && auth === undefined)
      throw new UsageError(
        `--host ${host} exposes the dashboard (and its retry/pause/resume actions) beyond this machine: give --auth user:password or --auth bearer:TOKEN (or --auth-file, or $${AUTH_ENV})`
      )
    if (args.string("auth") !== undefined) out.note("jobledger: --auth is visible to other users of this machine (ps); --auth-file or $" + AUTH_ENV + " keep it private")
    requireExistingLog(log)
    await ensureReachable(log)
    const queues = [...new Set(args.strings("queue"))]
    for (const q of queues) await requireQueue(q, log)

    const stop = nextSignal()
    const board = createDashboard({
      log: log.url,
      ...(log.kafka === undefined ? {} : { kafka: log.kafka }),
      ...(queues.length === 0 ? {} : { queues }),
      ...(auth === undefined ? {} : { auth }),
      // on loopback, only requests addressed to this machine (a rebinding site gets nothing)
      ...(loopback ? { allowedHosts: "loopback" as const } : {}),
      report: (e) => out.note(`jobledger: dashboard: ${messageOf(e)}`)
    })
    const server = createServer(board)
    try {
      await board.ready().catch((e) => {
        throw new CliFailure(messageOf(e))
      })
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) =>
          reject(new CliFailure(e.code === "EADDRINUSE" ? `port ${port} on ${host} is in use (choose another with --port)` : e.code === "EADDRNOTAVAIL" ? `cannot bind ${host}: no such address on this machine` : messageOf(e)))
        )
        server.listen(port, host, () => resolve())
      })
      const address = server.address()
      const bound = typeof address === "object" && address !== null ? address.port : port
      const shown = host.includes(":") ? `[${host}]` : host
      out.note(`dashboard ready: http://${shown}:${bound}/ log=${log}${auth === undefined ? "" : ` auth=${auth.kind}`}`)
      const signal = await stop.signal
      out.note(`dashboard stopping (${signal})`)
      return 0
    } finally {
      stop.dispose()
      await board.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
