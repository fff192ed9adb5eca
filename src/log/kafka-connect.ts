/**
 * Opening a Kafka connection with errors that say what to fix.
 *
 * kafkajs treats every connection error as retriable, a certificate that does not verify
 * included: it would retry for ~5 s and then report a retryable failure. `checkTls` makes
 * one TLS connection of our own first, with the same settings, and one request on it
 * (ApiVersions, which needs no authentication), so an untrusted or misnamed broker
 * certificate, or a broker refusing our client certificate (TLS 1.3 says so only after the
 * handshake), fails at once and for good. `connectError` adds what a refused
 * connection usually means when the client spoke plaintext or no SASL to a secured listener.
 */
import { connect, type TLSSocket } from "node:tls"
import { isIP } from "node:net"
import { LogError } from "./event-log.ts"
import { causesOf, isTlsFailure, toLogError } from "./kafka-client.ts"
import type { KafkaConnection } from "./kafka-options.ts"

const DEFAULT_CONNECT_TIMEOUT_MS = 3_000

const hostPort = (broker: string): { host: string; port: number } => {
  const i = broker.lastIndexOf(":")
  return { host: broker.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(broker.slice(i + 1)) }
}

/** An ApiVersions v0 request (size, api key 18, version 0, correlation id, client id): any answer will do. */
const apiVersionsRequest = (): Buffer => {
  const clientId = Buffer.from("jobledger-tls-check")
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length)
  body.writeInt16BE(18, 0)
  body.writeInt16BE(0, 2)
  body.writeInt32BE(1, 4)
  body.writeInt16BE(clientId.length, 8)
  clientId.copy(body, 10)
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length, 0)
  return Buffer.concat([size, body])
}

/** One connection and request: "ok" (an answer), "unreachable" (anything but a TLS failure: left to kafkajs), or the TLS error. */
const handshake = (connection: KafkaConnection, broker: string): Promise<"ok" | "unreachable" | Error> =>
  new Promise((resolve) => {
    const { host, port } = hostPort(broker)
    let socket: TLSSocket | undefined
    const done = (outcome: "ok" | "unreachable" | Error) => {
      clearTimeout(timer)
      socket?.destroy()
      resolve(outcome)
    }
    const timeoutMs = (connection.connectionTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS) + (connection.requestTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS)
    const timer = setTimeout(() => done("unreachable"), timeoutMs)
    try {
      socket = connect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...connection.ssl }, () => socket!.write(apiVersionsRequest()))
      socket.once("data", () => done("ok"))
      socket.once("error", (e) => done(isTlsFailure(e) ? e : "unreachable"))
      socket.once("close", () => done("unreachable"))
    } catch {
      done("unreachable")
    }
  })

/**
 * For a TLS connection: fails with a non-retryable LogError when the first broker that
 * answers presents a certificate these settings do not accept (or refuses the handshake);
 * otherwise resolves and leaves connecting (and reporting unreachable brokers) to kafkajs.
 */
export const checkTls = async (connection: KafkaConnection): Promise<void> => {
  if (connection.ssl === undefined) return
  for (const broker of connection.brokers) {
    const outcome = await handshake(connection, broker)
    if (outcome === "ok") return
    if (outcome instanceof Error) throw toLogError(connection.url, `connecting to ${broker} (TLS)`, outcome)
  }
}

/** The failure to open a connection, with a pointer to TLS or SASL when the broker hung up on us. */
export const connectError = (connection: KafkaConnection, cause: unknown): LogError => {
  if (cause instanceof LogError) return cause
  const error = toLogError(connection.url, "connecting", cause)
  const causes = causesOf(cause)
  const closed = causes.some((c) => c.name === "KafkaJSConnectionClosedError" || c.message === "Connection closed by the server")
  const tlsCut = connection.ssl !== undefined && causes.some((c) => c.message?.includes("before secure TLS connection was established") === true)
  const missing = [connection.ssl === undefined ? "TLS (kafkas://)" : "", connection.sasl === undefined ? "SASL (?sasl=scram-sha-512, plain, scram-sha-256)" : ""].filter(Boolean)
  const hint = tlsCut
    ? "the broker hung up during the TLS handshake: is this a TLS listener (kafkas:// and tls=1 speak TLS)?"
    : closed && missing.length > 0
      ? `the broker closed the connection: does its listener need ${missing.join(" or ")}?`
      : undefined
  if (hint === undefined) return error
  const message = `${error.message.replace(/ — are the brokers reachable\?$/, "")} — ${hint}`
  return new LogError({ message, retryable: error.retryable, cause: error.cause })
}
