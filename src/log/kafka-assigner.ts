/**
 * A sticky partition assigner for the engine group (kafkajs has only round-robin).
 *
 * Why: with round-robin, a member leaving (or dying) reshuffles the partitions of the
 * members that stay — p3 moves from A to C while A still runs p3's jobs. kafkajs revokes
 * only after the new generation is assigned, so the new owner fences the old one mid-job and
 * those jobs run again. Keeping every member's partitions where they are means only the
 * partitions of the member that left move (and, on a join, only the ones the newcomer needs).
 *
 * Each member sends the partitions it owns now, and the member id it owns them as, in its
 * join metadata (`userData`, JSON). A claim counts only if that id is the member's id in this
 * join: a member that was evicted (a zombie back from a long pause) rejoins under a new id, so
 * its stale claims cannot take partitions away from their live owners. The leader then:
 * 1. gives each member a target count (balanced: ⌊n/m⌋, the first n mod m members — those that
 *    owned most, then by member id — one more);
 * 2. lets each member keep what it owned, up to its target (a partition claimed by two members,
 *    which happens only with a zombie, goes to the first in that order);
 * 3. deals the rest, lowest partition first, to the members below their target.
 * Same inputs, same result: the assignment is a pure function of (members, claims, partitions).
 *
 * Offered before RoundRobinAssigner, so a group with older members still agrees on round-robin.
 */
import kafkajs from "kafkajs"
import type { PartitionAssigner } from "kafkajs"

const { AssignerProtocol } = kafkajs
const NAME = "JobledgerSticky"
const VERSION = 1

/** The pure part: `claims` maps member id → partitions it owns now. */
export const stickyAssignment = (
  claims: ReadonlyMap<string, ReadonlyArray<number>>,
  partitions: ReadonlyArray<number>
): Map<string, Array<number>> => {
  const valid = new Set(partitions)
  const members = [...claims.keys()].sort((a, b) => {
    const byOwned = (claims.get(b)?.length ?? 0) - (claims.get(a)?.length ?? 0)
    return byOwned !== 0 ? byOwned : a < b ? -1 : a > b ? 1 : 0
  })
  const out = new Map<string, Array<number>>(members.map((m) => [m, []]))
  if (members.length === 0) return out
  const base = Math.floor(partitions.length / members.length)
  const extra = partitions.length % members.length
  const target = new Map(members.map((m, i) => [m, base + (i < extra ? 1 : 0)]))
  const taken = new Set<number>()
  for (const m of members) {
    const keep = [...new Set(claims.get(m) ?? [])].filter((p) => valid.has(p) && !taken.has(p)).sort((a, b) => a - b)
    for (const p of keep.slice(0, target.get(m)!)) {
      out.get(m)!.push(p)
      taken.add(p)
    }
  }
  const free = [...partitions].filter((p) => !taken.has(p)).sort((a, b) => a - b)
  for (const m of members) {
    const mine = out.get(m)!
    while (mine.length < target.get(m)! && free.length > 0) mine.push(free.shift()!)
    mine.sort((a, b) => a - b)
  }
  return out
}

/** What a member claims: the partitions it owns, if it owns them as `memberId`. */
export interface Claim {
  readonly memberId: string | undefined
  readonly owned: ReadonlyArray<number>
}

const claimsOf = (memberId: string, userData: Buffer | null | undefined): Array<number> => {
  if (userData === null || userData === undefined || userData.length === 0) return []
  try {
    const parsed = JSON.parse(userData.toString("utf8")) as { memberId?: unknown; owned?: unknown }
    if (parsed.memberId !== memberId) return []
    return Array.isArray(parsed.owned) ? parsed.owned.filter((p): p is number => Number.isInteger(p) && p >= 0) : []
  } catch {
    return []
  }
}

/** The assigner of a member whose current claim `claim()` returns. */
export const stickyAssigner =
  (claim: () => Claim): PartitionAssigner =>
  ({ cluster }) => ({
    name: NAME,
    version: VERSION,
    protocol: ({ topics }) => ({
      name: NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: VERSION,
        topics,
        userData: Buffer.from(JSON.stringify(claim()))
      })
    }),
    assign: async ({ members, topics }) => {
      const perMember = new Map<string, Record<string, Array<number>>>(members.map((m) => [m.memberId, {}]))
      for (const topic of topics) {
        const partitions = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId)
        const claims = new Map(
          members.map((m) => [m.memberId, claimsOf(m.memberId, AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData)] as const)
        )
        for (const [memberId, mine] of stickyAssignment(claims, partitions)) perMember.get(memberId)![topic] = mine
      }
      return [...perMember].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: VERSION, assignment, userData: Buffer.alloc(0) })
      }))
    }
  })
