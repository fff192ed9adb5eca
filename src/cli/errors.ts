/**
 * How the `jobledger` command fails. Every failure ends as one line on stderr and an exit
 * status; none prints a stack trace (set JOBLEDGER_DEBUG=1 to see one).
 *
 * - UsageError → exit 2: the command line is wrong (unknown command or flag, missing or
 *   malformed argument). A second line points to the command's `--help`.
 * - CliFailure → exit 1: the command line was fine but the check or operation failed (job
 *   not found, audit found problems, log unreachable).
 */

/** Exit statuses of `jobledger`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** The command line is wrong: exit 2, with a pointer to `--help`. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

/** The operation or check failed: exit 1. */
export class CliFailure extends Error {
  override readonly name = "CliFailure"
}

/** A message on one line: library and driver messages may span several. */
export const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ").trim()

/** The message of anything thrown, on one line. */
export const messageOf = (e: unknown): string => {
  if (e instanceof Error) return oneLine(e.message || e.name)
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string")
    return oneLine((e as { message: string }).message)
  return oneLine(String(e))
}
