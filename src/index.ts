/**
 * jobledger — an event-sourced background job engine. The only module users import.
 */
export { JobQueue, QueueLogError } from "./queue.ts"
export { InvalidOptionError } from "./options.ts"
export { NoSuchQueueError, replayQueue, type ReplayOptions, type ReplayResult } from "./read/replay.ts"
export type {
  Job,
  JobHandler,
  JobOptions,
  JobState,
  QueueHooks,
  QueueOptions,
  QueueStats,
  QueueStore,
  RateLimitOptions,
  RetryOptions
} from "./types.ts"
export { createDashboard, type Dashboard, type DashboardAuth, type DashboardOptions } from "./dashboard/dashboard.ts"
export { metrics, type MetricsOptions, type QueueMetrics } from "./metrics/metrics.ts"
