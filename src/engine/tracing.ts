/**
 * OpenTelemetry, through `@opentelemetry/api` only: jobledger creates spans and carries trace
 * context, the application chooses the SDK (none installed: every call here is the API's
 * no-op, and nothing is recorded).
 *
 * - At `add`, the trace context active in the caller (an HTTP request's span, say) is put in
 *   the job (`trace`, W3C `traceparent`/`tracestate`, through the registered propagator).
 * - Each handler attempt runs in a span `process <queue>` (kind CONSUMER) whose parent is
 *   that context, with the queue, job id and name, attempt and — when it ends — its outcome;
 *   the handler runs inside it, so spans the handler makes are its children.
 */
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api"
import type { TraceContext } from "../../machines/schema.ts"
import type { JobView } from "../../projections/job-view.ts"

const TRACER = "jobledger"

/** The trace context active now, as a job carries it; `undefined` without a propagator or a span. */
export const activeTraceContext = (): TraceContext | undefined => {
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  const { traceparent, tracestate } = carrier
  if (traceparent === undefined || traceparent.length === 0 || traceparent.length > 128) return undefined
  return tracestate === undefined || tracestate.length === 0 || tracestate.length > 512 ? { traceparent } : { traceparent, tracestate }
}

/** How an attempt ended, as its span says (`jobledger.job.outcome`). */
export type AttemptOutcome = "completed" | "retrying" | "failed" | "cancelled" | "handed-back"

export interface AttemptSpan {
  /** Runs `f` with the span active (the handler's own spans become its children). */
  readonly run: <A>(f: () => A) => A
  /** Ends the span once; a failed outcome records the error. */
  readonly end: (outcome: AttemptOutcome, error?: { readonly name?: string; readonly message: string }) => void
}

const NOT_RECORDING: AttemptSpan = Object.freeze({ run: <A>(f: () => A): A => f(), end: () => {} })

/** The span of one handler attempt of `job`, a child of the context it was added in. */
export const startAttemptSpan = (queue: string, job: JobView): AttemptSpan => {
  const parent = job.trace === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, job.trace)
  const span: Span = trace.getTracer(TRACER).startSpan(`process ${queue}`, { kind: SpanKind.CONSUMER }, parent)
  // without an SDK (and nothing to pass on) the span is a no-op: skip what every job would pay for
  if (!span.isRecording() && job.trace === undefined) return NOT_RECORDING
  span.setAttributes({
    "messaging.system": "jobledger",
    "messaging.operation.type": "process",
    "messaging.destination.name": queue,
    "messaging.message.id": job.id,
    "jobledger.job.name": job.name,
    "jobledger.job.attempt": job.attemptsMade
  })
  const active = trace.setSpan(parent, span)
  let ended = false
  return {
    run: (f) => context.with(active, f),
    end: (outcome, error) => {
      if (ended) return
      ended = true
      span.setAttribute("jobledger.job.outcome", outcome)
      if (error !== undefined && outcome !== "completed") {
        span.recordException({ name: error.name ?? "Error", message: error.message })
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
      }
      span.end()
    }
  }
}
