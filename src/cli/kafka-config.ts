/**
 * `--kafka-config <file.json>`: the `kafka` option of every JobQueue the command opens, from a
 * JSON file — for what a log URL cannot say (SASL credentials, PEM text, client id, timeouts).
 *
 * Invariant: no message about the file shows any of its contents. JSON.parse's own messages
 * quote the text around a syntax error (which may be the password), so only the position is
 * reported; the settings' checks never show a value (kafka-options.ts).
 */
import { readFileSync } from "node:fs"
import { type KafkaOptions, validateKafkaOptions } from "../log/kafka-options.ts"
import { UsageError } from "./errors.ts"

/** What JSON.parse found, in its words up to where it would start quoting the file. */
const KIND = /^(Unexpected token|Unexpected end of JSON input|Unexpected non-whitespace character|Expected [^"]+?(?= in JSON|$)|Bad control character|Bad escaped character|Unterminated string)/

/** Where a JSON syntax error is (`at line L, column C`) and what, from JSON.parse's message — never its quote of the text. */
const position = (text: string, message: string): string => {
  const kind = KIND.exec(message)?.[1]
  const m = /at position (\d+)/.exec(message)
  let where = ""
  if (m !== null) {
    const before = text.slice(0, Number(m[1]))
    where = ` at line ${before.split("\n").length}, column ${before.length - before.lastIndexOf("\n")}`
  }
  return `${where}${kind === undefined ? "" : ` (${kind.toLowerCase()})`}`
}

/** The decoded and checked contents of the file, or undefined without the flag. Throws UsageError. */
export const loadKafkaConfig = (file: string | undefined): KafkaOptions | undefined => {
  if (file === undefined) return undefined
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (e) {
    throw new UsageError(`--kafka-config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "unreadable"})`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new UsageError(`--kafka-config ${file} is not valid JSON${position(text, (e as Error).message)}`)
  }
  try {
    return validateKafkaOptions(value, "")
  } catch (e) {
    throw new UsageError(`--kafka-config ${file}: ${(e as Error).message}`)
  }
}
