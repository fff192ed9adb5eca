/** Log URLs (src/log/log-url.ts): the kafka query parameters. */
import { describe, expect, it } from "vitest"
import { parseLogUrl } from "../src/log/log-url.ts"

describe("parseLogUrl kafka parameters", () => {
  it("parses replication and partitions", () => {
    expect(parseLogUrl("kafka://a:9092")).toEqual({ kind: "kafka", brokers: ["a:9092"] })
    expect(parseLogUrl("kafka://a:9092,b:9093?replication=3")).toEqual({ kind: "kafka", brokers: ["a:9092", "b:9093"], replicationFactor: 3 })
    expect(parseLogUrl("kafka://a:9092/?partitions=6&replication=1")).toEqual({ kind: "kafka", brokers: ["a:9092"], replicationFactor: 1, partitions: 6 })
  })

  it("parses retainMs (history retention), an hour at least", () => {
    expect(parseLogUrl("kafka://a:9092?retainMs=604800000")).toEqual({ kind: "kafka", brokers: ["a:9092"], retainMs: 604_800_000 })
    expect(parseLogUrl("kafka://a:9092?retainMs=3600000")).toMatchObject({ retainMs: 3_600_000 })
  })

  it.each([
    ["kafka://a:9092?replication=0", /replication must be a whole number from 1/],
    ["kafka://a:9092?replication=1.5", /replication must be a whole number/],
    ["kafka://a:9092?partitions=x", /partitions must be a whole number from 1 to 10000 \(got 'x'\)/],
    ["kafka://a:9092?partitions=", /partitions must be a whole number/],
    ["kafka://a:9092?partition=3", /unknown parameter 'partition'/],
    ["kafka://a:9092?partitions=2&partitions=3", /partitions is given more than once/],
    ["kafka://?partitions=3", /every broker must be host:port/],
    ["kafka://a:9092?retainMs=3599999", /retainMs must be at least 3600000 \(1 h\)/],
    ["kafka://a:9092?retainMs=-1", /retainMs must be a whole number/],
    ["kafka://a:9092?retainMs=1d", /retainMs must be a whole number/]
  ])("refuses %s with a clear error", (url, message) => {
    expect(() => parseLogUrl(url)).toThrow(message)
  })
})
