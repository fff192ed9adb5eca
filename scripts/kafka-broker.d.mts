// Types for scripts/kafka-broker.mjs (so TypeScript tests and setup files can import it).

export declare const DEFAULT_KAFKA_VERSION: string
export declare const DEFAULT_KAFKA_PORT: number
export declare const INSTALL_HINT: string

/** exitCode: 3 = java or mvn missing, 2 = port taken by something else, 1 = anything else. */
export declare class KafkaBrokerError extends Error {
  constructor(message: string, exitCode?: number)
  readonly exitCode: number
}

export interface BrokerInfo {
  /** "127.0.0.1:<port>" */
  bootstrap: string
  port: number
  version: string
  pid: number
  /** true when an already running, healthy broker was reused */
  reused: boolean
  dataDir: string
  logFile: string
}

export interface StartOptions {
  /** default: $KAFKA_VERSION or "3.9.1" */
  version?: string
  /** default: $KAFKA_PORT or 19092 (the controller listens on port+1) */
  port?: number
  /**
   * the broker's own directory (run/ and data/ inside); default $JOBLEDGER_KAFKA_DIR or .kafka/.
   * Tests that stop or restart a broker use a dir and port of their own.
   */
  dir?: string
  /** wipe .kafka/data first (default true); restartBroker() uses false */
  fresh?: boolean
  /** readiness deadline, default $KAFKA_START_TIMEOUT_MS or 120000 */
  timeoutMs?: number
  /** progress messages, default: to stderr with a "[kafka]" prefix */
  log?: (message: string) => void
}

export declare function startBroker(options?: StartOptions): Promise<BrokerInfo>

/** How to reach a secured broker (also written to <dir>/run/secure.json). */
export interface SecureBrokerInfo {
  /** SASL_SSL listener: SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN for `username`. */
  bootstrap: string
  /** SSL listener that requires a client certificate signed by the CA (no SASL). */
  mtlsBootstrap: string
  /** PLAINTEXT inter-broker listener on loopback. */
  internalBootstrap: string
  caFile: string
  /** An unrelated CA (for "wrong CA" tests). */
  wrongCaFile: string
  clientCertFile: string
  clientKeyFile: string
  username: string
  /** Random, made for this broker. */
  password: string
  mechanisms: Array<"plain" | "scram-sha-256" | "scram-sha-512">
  version: string
}

/**
 * A broker whose client listener is SASL_SSL (TLS material made with keytool, SCRAM user
 * created by StorageTool --add-scram). Default dir: a new temporary one; default port: a
 * free run of four (KAFKA_SECURE_PORT overrides). Stop it with stopBroker({ dir }).
 */
export declare function startSecureBroker(options?: {
  version?: string
  port?: number
  dir?: string
  timeoutMs?: number
  log?: (message: string) => void
}): Promise<BrokerInfo & { dir: string; infoFile: string; secure: SecureBrokerInfo }>
/** A port p such that p..p+n-1 are free on 127.0.0.1. */
export declare function freePorts(n: number): Promise<number>
export declare function stopBroker(options?: {
  dir?: string
  timeoutMs?: number
  log?: (message: string) => void
}): Promise<{ stopped: boolean; pid?: number; how?: "terminated" | "killed" }>
/** Stop, wait `downMs` (default 0), then start with the same version, port and data dir. */
export declare function restartBroker(options?: {
  dir?: string
  timeoutMs?: number
  downMs?: number
  log?: (message: string) => void
}): Promise<BrokerInfo>
export declare function brokerStatus(options?: { dir?: string }): Promise<{
  running: boolean
  healthy: boolean
  bootstrap: string
  version?: string
  port: number
  pid?: number
  rssBytes?: number
}>
/** Resolves kafka_2.13:<version> (+ a logging backend) with Maven; returns the Java classpath. */
export declare function resolveClasspath(version?: string, options?: { log?: (message: string) => void }): string
/** One readiness probe (kafkajs admin: connect, listTopics, describeCluster); ssl/sasl as kafkajs takes them. */
export declare function probe(bootstrap: string, options?: { timeoutMs?: number; ssl?: unknown; sasl?: unknown }): Promise<boolean>
export declare const paths: { root: string; runDir: string; dataDir: string; serverLog: string; outLog: string }
