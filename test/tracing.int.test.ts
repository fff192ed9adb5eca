/**
 * OpenTelemetry: with an SDK registered (in-memory exporter), each handler attempt is a span
 * that is a child of the span active at `add` — across the log, on every backend — with the
 * job's attributes and its outcome; spans the handler makes are its children. Without an SDK
 * nothing is carried (the API is a no-op).
 */
import { context, propagation, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { W3CTraceContextPropagator } from "@opentelemetry/core"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { replayQueue } from "../src/index.ts"
import { backends, until } from "./support/backends.ts"
import { queueOpener } from "./fixtures/helpers.ts"

const exporter = new InMemorySpanExporter()
const contextManager = new AsyncLocalStorageContextManager()

beforeAll(() => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  context.setGlobalContextManager(contextManager.enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
})
afterAll(() => {
  trace.disable()
  context.disable()
  propagation.disable()
})

describe.each(backends)("tracing on $name", (backend) => {
  const { open, closeAll } = queueOpener(backend)
  afterEach(async () => {
    await closeAll()
    exporter.reset()
  })

  it("the handler's span is a child of the request that added the job; its own spans are its children", async () => {
    const q = open({ retry: { attempts: 1, delay: 10 } })
    q.process("send", async (job) => {
      trace.getTracer("app").startSpan("smtp").end() // made inside the handler
      if (job.attemptsMade === 0) throw new Error("first try fails")
      return "sent"
    })
    const tracer = trace.getTracer("app")
    const request = tracer.startSpan("POST /signup")
    const job = await context.with(trace.setSpan(context.active(), request), () => q.add("send", { to: "a@b.c" }))
    request.end()
    await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete", 20_000)
    await until(() => exporter.getFinishedSpans().filter((s) => s.name === `process ${q.name}`).length === 2, "two attempt spans")

    const spans = exporter.getFinishedSpans()
    const attempts = spans.filter((s) => s.name === `process ${q.name}`).sort((a, b) => Number(a.attributes["jobledger.job.attempt"]) - Number(b.attributes["jobledger.job.attempt"]))
    const parentOf = (s: (typeof spans)[number]) => s.parentSpanContext?.spanId
    for (const a of attempts) {
      expect(a.spanContext().traceId).toBe(request.spanContext().traceId)
      expect(parentOf(a)).toBe(request.spanContext().spanId)
      expect(a.attributes).toMatchObject({ "messaging.system": "jobledger", "messaging.destination.name": q.name, "messaging.message.id": job.id, "jobledger.job.name": "send" })
    }
    expect(attempts.map((a) => a.attributes["jobledger.job.outcome"])).toEqual(["retrying", "completed"])
    expect(attempts[0]!.status.code).toBe(2) // ERROR
    const smtp = spans.filter((s) => s.name === "smtp")
    expect(smtp).toHaveLength(2)
    for (const s of smtp) expect(attempts.map((a) => a.spanContext().spanId)).toContain(parentOf(s))
    // the context travels in the log: a replay sees the job's traceparent
    const { projection } = await replayQueue(q.log, q.name)
    expect(projection.get(job.id)?.trace?.traceparent).toMatch(new RegExp(`^00-${request.spanContext().traceId}-${request.spanContext().spanId}-01$`))
  })

  it("a job added outside any span still gets an attempt span (a root), and carries no trace context", async () => {
    const q = open()
    q.process("plain", async () => null)
    const job = await q.add("plain", null)
    await until(() => exporter.getFinishedSpans().some((s) => s.attributes["messaging.message.id"] === job.id), "the attempt span", 20_000)
    const span = exporter.getFinishedSpans().find((s) => s.attributes["messaging.message.id"] === job.id)!
    expect(span.parentSpanContext).toBeUndefined()
    expect((await replayQueue(q.log, q.name)).projection.get(job.id)?.trace).toBeUndefined()
  })
})
