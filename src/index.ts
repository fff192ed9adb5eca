/**
 * jobledger — an event-sourced background job engine. The only module users import.
 */
export { JobQueue, QueueLogError } from "./queue.ts"
export { WaitTimeoutError } from "./read/job-end.ts"
export { CancelledError } from "./engine/handler-run.ts"
export { InvalidOptionError } from "./options.ts"
export { NoSuchQueueError, replayQueue, type ReplayOptions, type ReplayResult } from "./read/replay.ts"
export type {
  ActiveJob,
  Job,
  JobHandler,
  JobOptions,
  JobState,
  KeepOptions,
  KeepRuleOptions,
  QueueEvents,
  QueueHooks,
  QueueOptions,
  QueueStats,
  QueueStore,
  RateLimitOptions,
  ScheduleInfo,
  ScheduleRepeat,
  ScheduleTemplate,
  RetryOptions
} from "./types.ts"
export type { KafkaOptions, KafkaSaslOptions, KafkaTlsOptions } from "./log/kafka-options.ts"
export { createDashboard, type Dashboard, type DashboardAuth, type DashboardOptions } from "./dashboard/dashboard.ts"
export { metrics, type MetricsOptions, type QueueMetrics } from "./metrics/metrics.ts"
