/**
 * The secured broker of the SASL_SSL suites (scripts/kafka-broker.mjs startSecureBroker):
 * the one `npm test` started (its description file in JOBLEDGER_TEST_SECURE_KAFKA), else one
 * of this test file's own, in a temporary directory on free ports, stopped afterwards.
 *
 * The suites skip, saying why, only when Java or keytool is missing (the broker cannot be
 * made) or when JOBLEDGER_SKIP_KAFKA=1 asked for no Kafka at all.
 */
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { startSecureBroker, stopBroker } from "../../scripts/kafka-broker.mjs"

/** What scripts/kafka-broker.mjs writes to <dir>/run/secure.json. */
export interface SecureBroker {
  /** The SASL_SSL listener (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN). */
  readonly bootstrap: string
  /** An SSL listener that requires a client certificate (no SASL). */
  readonly mtlsBootstrap: string
  /** The PLAINTEXT inter-broker listener (loopback). */
  readonly internalBootstrap: string
  readonly caFile: string
  /** A CA that did not sign the broker's certificate. */
  readonly wrongCaFile: string
  readonly clientCertFile: string
  readonly clientKeyFile: string
  readonly username: string
  /** A fresh random password, made for this broker: the suites grep every output for it. */
  readonly password: string
  readonly version: string
}

const has = (cmd: string, args: Array<string>) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  return r.error === undefined && r.status === 0
}

/** Why the secured suites cannot run here, or undefined when they can (and so must). */
export const secureSkipReason: string | undefined =
  process.env.JOBLEDGER_SKIP_KAFKA === "1"
    ? "JOBLEDGER_SKIP_KAFKA=1: the SASL_SSL broker suites are SKIPPED"
    : process.env.JOBLEDGER_TEST_SECURE_KAFKA
      ? undefined
      : !has("java", ["-version"])
        ? "java is not installed: the SASL_SSL broker cannot be started, its suites are SKIPPED"
        : !has("keytool", ["-help"])
          ? "keytool (from the JDK) is not installed: the broker's certificates cannot be made, the SASL_SSL suites are SKIPPED"
          : undefined

if (secureSkipReason !== undefined) console.warn(`SKIPPED: ${secureSkipReason}`)

/**
 * The broker: the shared one when `npm test` made it, else a private one. `release` stops a
 * private broker and removes its directory (its keys and the password with it).
 */
export const acquireSecureBroker = async (): Promise<{ broker: SecureBroker; release: () => Promise<void>; startedMs: number }> => {
  const shared = process.env.JOBLEDGER_TEST_SECURE_KAFKA
  if (shared) return { broker: JSON.parse(readFileSync(shared, "utf8")) as SecureBroker, release: async () => {}, startedMs: 0 }
  const t0 = Date.now()
  const log = (msg: string) => process.stderr.write(`[secure kafka] ${msg}\n`)
  const started = await startSecureBroker({ log })
  return {
    broker: started.secure,
    startedMs: Date.now() - t0,
    release: async () => {
      await stopBroker({ dir: started.dir, log })
      rmSync(started.dir, { recursive: true, force: true })
    }
  }
}
