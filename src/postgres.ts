/**
 * jobledger/postgres — every job's view of a queue in PostgreSQL (`pg` is an optional peer
 * dependency: `npm install pg`). See the README's "PostgreSQL store".
 */
export { PostgresQueueStore, type Page, type PageOptions, type PostgresQueueStoreOptions } from "./stores/postgres/store.ts"
export { PostgresStoreError, type PgClient, type PgPool } from "./stores/postgres/pg.ts"
export type { FollowerProgress } from "./stores/postgres/follower.ts"
export type { FollowingStore, FollowSource, StoreFollower } from "./stores/following.ts"
