/**
 * Where the calling module's file is, for code that must find files or packages relative to
 * itself in both builds: the ESM build has no `__filename`, the CommonJS build no
 * `import.meta.url`. V8's call sites know it in both.
 */

/** The file (a path, or a file: URL in ESM) of the module whose code calls this; `undefined` if V8 cannot tell. */
export const callerModuleFile = (): string | undefined => {
  const prepare = Error.prepareStackTrace
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = 2 // this frame and the caller's, whatever the application set
    Error.prepareStackTrace = (_error, sites) => sites
    const sites = new Error().stack as unknown as ReadonlyArray<NodeJS.CallSite> | undefined
    return sites?.[1]?.getFileName() ?? undefined
  } catch {
    return undefined
  } finally {
    Error.prepareStackTrace = prepare
    Error.stackTraceLimit = limit
  }
}
