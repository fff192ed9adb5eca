/**
 * docker-compose.yml beyond its default services (kafka-broker.int.test.ts checks the file as
 * it is): the PostgreSQL service of the `postgres` profile, and the commented SASL_SSL variant,
 * which must be a valid compose file once uncommented as its instructions say (remove one
 * '# ' from every line between the markers). Only validated (`config`), not started: that
 * needs a Docker daemon.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const COMPOSE_FILE = join(ROOT, "docker-compose.yml")

const has = (cmd: string, args: Array<string>) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  return r.error === undefined && r.status === 0
}
/** The compose plugin (docker compose) first, the standalone docker-compose otherwise. */
const compose: [string, Array<string>] | undefined = has("docker", ["compose", "version"])
  ? ["docker", ["compose"]]
  : has("docker-compose", ["version"])
    ? ["docker-compose", []]
    : undefined
const skipReason = compose === undefined ? "neither `docker compose` nor `docker-compose` is installed: docker-compose.yml variants not validated" : undefined
if (skipReason !== undefined) console.warn(`SKIPPED: ${skipReason}`)

const config = (file: string, args: Array<string>, env: Record<string, string> = {}) => {
  const [cmd, pre] = compose!
  const r = spawnSync(cmd, [...pre, "-f", file, "--project-directory", ROOT, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env }
  })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** The file with the SASL_SSL variant uncommented, the way its comment says to. */
const uncommented = (): string => {
  let inside = false
  let seen = 0
  const lines = readFileSync(COMPOSE_FILE, "utf8")
    .split("\n")
    .map((line) => {
      if (line.includes("# >>> SASL_SSL variant")) {
        inside = true
        seen++
        return line
      }
      if (line.includes("# <<< SASL_SSL variant")) {
        inside = false
        return line
      }
      return inside ? line.replace(/^(\s*)# ?/, "$1") : line
    })
  expect(seen, "the SASL_SSL variant's markers").toBe(1)
  const file = join(mkdtempSync(join(tmpdir(), "jobledger-compose-")), "docker-compose.yml")
  writeFileSync(file, lines.join("\n"))
  return file
}

describe.skipIf(skipReason !== undefined)(`docker-compose.yml variants${skipReason === undefined ? "" : ` — SKIPPED: ${skipReason}`}`, () => {
  it("has a PostgreSQL service in the postgres profile (not started by a plain `up`)", () => {
    const r = config(COMPOSE_FILE, ["--profile", "postgres", "config"])
    expect(r.status, r.out).toBe(0)
    expect(r.out).toMatch(/^ {2}postgres:$/m)
    expect(r.out).toContain("image: postgres:16")
    expect(r.out).toMatch(/pg_isready -U jobledger -d jobledger/)
    expect(r.out).toMatch(/ {4}profiles:\n {4}- postgres\n/)
  })

  it("the commented SASL_SSL variant, uncommented, is valid: a SASL_SSL broker, its SCRAM user and an engine on kafkas://", () => {
    const file = uncommented()
    const r = config(file, ["config"], { JOBLEDGER_KAFKA_PASSWORD: "compose-check-only" })
    expect(r.status, r.out).toBe(0)
    for (const service of ["kafka", "engine", "kafka-secure", "kafka-secure-users", "engine-secure"]) expect(r.out).toMatch(new RegExp(`^ {2}${service}:$`, "m"))
    expect(r.out).toContain("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,HOST:SASL_SSL,CONTROLLER:PLAINTEXT")
    expect(r.out).toContain("SCRAM-SHA-512=[password=$$JOBLEDGER_KAFKA_PASSWORD]")
    expect(r.out).toContain("kafkas://kafka-secure:9093?sasl=scram-sha-512&ca=/app/.kafka-secrets/ca.pem")
    // the password has to be given: no default one is built in
    const without = config(file, ["config", "-q"], { JOBLEDGER_KAFKA_PASSWORD: "" })
    expect(without.status).not.toBe(0)
    expect(without.out).toContain("set JOBLEDGER_KAFKA_PASSWORD for the SASL_SSL variant")
  })
})
