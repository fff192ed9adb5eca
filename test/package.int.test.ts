/**
 * The npm package as a user gets it. `npm pack` runs in a copy of the working tree: its
 * `prepack` builds dist/ from nothing, as on a fresh clone, while the suites running next to
 * this one keep using the repository's own dist/. The tarball is then installed with a real
 * `npm install` into a project outside the repository, whose two subprojects share its
 * node_modules: `esm/` ("type": "module") and `cjs/` (CommonJS). Everything there runs with
 * plain `node`: the seed's email example on the default SQLite log, `npx jobledger stats` on
 * the file it wrote, `jobledger engine` with a handlers module of every format, and
 * TypeScript consumers of the declarations; attw and publint check the tarball's exports.
 *
 * Speed: npm resolves from its cache (--prefer-offline), and better-sqlite3 installs from a
 * prebuilt binary made of the repository's own compiled addon (the same version, pinned with
 * `overrides`), found by prebuild-install as a local prebuild: the path a user with a prebuilt
 * binary takes, instead of a 1–2 min compile. (Another version or platform would not find it
 * and compile from source: slower, still right.) tsx and @types/node are installed by a second
 * `npm install`, after the checks that must run without tsx.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join, relative, sep } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { kafkaBrokers, uniqueQueue } from "./support/backends.ts"
import { runToEnd } from "./support/children.ts"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const FIXTURES = join(ROOT, "test", "fixtures", "package")
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string }
/** Generous: a build, installs and Kafka group joins on a loaded 2-core machine. */
const SETUP_TIMEOUT_MS = 600_000
const TEST_TIMEOUT_MS = 180_000
const RUN_TIMEOUT_MS = 120_000

/** Top-level entries of the working tree that a pack must never see (and that are big). */
const NOT_COPIED = new Set(["node_modules", "dist", ".git", ".kafka", ".jobledger", "scratch", "coverage"])

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

const work = mkdtempSync(join(tmpdir(), "jobledger-package-"))
const source = join(work, "source")
const app = join(work, "app")
const esm = join(app, "esm")
const cjs = join(app, "cjs")

/**
 * The environment of everything run in the user's project: nothing of the `npm test` that
 * runs this suite (its npm_* variables, the repository's node_modules/.bin on PATH, loaders
 * in NODE_OPTIONS, a log choice), except npm's own cache and configuration files.
 */
const userEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  const keep = new Set(["npm_config_cache", "npm_config_userconfig", "npm_config_globalconfig", "npm_config_cafile", "npm_config_registry"])
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || keep.has(k.toLowerCase())) env[k] = v
  for (const k of ["INIT_CWD", "NODE_OPTIONS", "JOBLEDGER_LOG", "JOBLEDGER_DEBUG", "PACKAGE_TEST_QUEUE"]) delete env[k]
  env.PATH = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((p) => !p.startsWith(ROOT))
    .join(delimiter)
  return { ...env, ...extra }
}

/** Runs a command to completion (killed after `timeoutMs`). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> =>
  runToEnd(command, args, { cwd, env: options.env ?? userEnv(), timeoutMs: options.timeoutMs ?? RUN_TIMEOUT_MS })

/** A command that must succeed: its output, or an error with everything it printed. */
const ok = async (command: string, args: ReadonlyArray<string>, cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) => {
  const r = await run(command, args, cwd, options)
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} (in ${cwd}) exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

/** `npx jobledger …` as a user types it; `--no` makes npx fail rather than fetch a package. */
const npxJobledger = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run("npx", ["--no", "jobledger", ...args], cwd, { env: userEnv(env) })

const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? ""

/** The installed bin, run directly (no npx start-up) for the many calls of the engine tests. */
const jobledger = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run(join(app, "node_modules", ".bin", "jobledger"), args, cwd, { env: userEnv(env) })

interface Stats {
  readonly waiting: number
  readonly active: number
  readonly completed: number
  readonly failed: number
}

/** Polls `jobledger stats <queue> --json` until `predicate` holds. */
const statsUntil = async (cwd: string, queue: string, predicate: (s: Stats) => boolean, what: string): Promise<Stats> => {
  const deadline = Date.now() + RUN_TIMEOUT_MS
  let last = ""
  while (Date.now() < deadline) {
    const r = await jobledger(cwd, ["stats", queue, "--json"])
    last = `${r.code} ${r.stdout} ${r.stderr}`
    if (r.code === 0) {
      const stats = JSON.parse(r.stdout) as Stats
      if (predicate(stats)) return stats
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what} on queue ${queue}; last: ${last}`)
}

/** `jobledger engine --handlers <module>` in `cwd`, once it printed its ready line. */
const startEngine = async (cwd: string, handlers: string, queue: string): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> => {
  const child = spawn(join(app, "node_modules", ".bin", "jobledger"), ["engine", "--handlers", handlers, "--grace", "5000"], {
    cwd,
    env: userEnv({ PACKAGE_TEST_QUEUE: queue }),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  child.stdout.resume()
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  let done = false
  void exited.then(() => (done = true))
  const deadline = Date.now() + RUN_TIMEOUT_MS
  while (!stderr.includes(`engine ready: queue=${queue} `)) {
    if (done || Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`engine --handlers ${handlers} not ready (exited: ${done}); stderr: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { child, stderr: () => stderr, exited }
}

/** The README's "Example" block, as TypeScript consumers of each kind compile it. */
const readmeExample = (): { imports: Array<string>; body: Array<string> } => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8")
  const block = /^## Example\s+```ts\n([\s\S]*?)\n```/m.exec(readme)
  if (block === null) throw new Error("README.md has no ```ts block under '## Example'")
  const lines = block[1]!.split("\n")
  return { imports: lines.filter((l) => l.startsWith("import ")), body: lines.filter((l) => !l.startsWith("import ")) }
}

/** A consumer file: README example + the generics checks; `wrap` puts the code in an async function (no top-level await in CommonJS). */
const consumer = (wrap: boolean): string => {
  const example = readmeExample()
  const generics = readFileSync(join(FIXTURES, "types", "generics.ts"), "utf8").split("\n")
  const prelude = readFileSync(join(FIXTURES, "types", "prelude.ts"), "utf8")
  const imports = [...example.imports, ...generics.filter((l) => l.startsWith("import "))]
  const code = [...example.body, "", ...generics.filter((l) => !l.startsWith("import "))]
  return [...imports, "", prelude, ...(wrap ? ["export async function readme() {", ...code, "}"] : code)].join("\n")
}

let tarball = ""
let installEnv: NodeJS.ProcessEnv = {}
let packed: { filename: string; size: number; unpackedSize: number; entryCount: number; files: Array<{ path: string }> }
const engines: Array<ChildProcess> = []

beforeAll(async () => {
  // a working-tree copy (uncommitted edits included), with the repository's node_modules
  cpSync(ROOT, source, { recursive: true, filter: (from) => !NOT_COPIED.has(relative(ROOT, from).split(sep)[0]!) })
  symlinkSync(join(ROOT, "node_modules"), join(source, "node_modules"), "dir")
  const pack = await ok("npm", ["pack", "--json", "--pack-destination", work], source, { timeoutMs: SETUP_TIMEOUT_MS })
  packed = (JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as Array<typeof packed>)[0]!
  tarball = join(work, packed.filename)
  console.log(`packed ${packed.filename}: ${packed.size} bytes, ${packed.unpackedSize} unpacked, ${packed.entryCount} files`)

  // better-sqlite3 as a local prebuild (see the file's comment)
  const sqlite = JSON.parse(readFileSync(join(ROOT, "node_modules", "better-sqlite3", "package.json"), "utf8")) as { version: string }
  const prebuilds = join(work, "prebuilds")
  mkdirSync(prebuilds)
  await ok(
    "tar",
    ["czf", join(prebuilds, `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`), "build/Release/better_sqlite3.node"],
    join(ROOT, "node_modules", "better-sqlite3")
  )

  mkdirSync(esm, { recursive: true })
  mkdirSync(cjs, { recursive: true })
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "jobledger-package-test", private: true, overrides: { "better-sqlite3": sqlite.version }, allowScripts: { "better-sqlite3": true, esbuild: true } }, null, 2)
  )
  writeFileSync(join(esm, "package.json"), JSON.stringify({ type: "module" }))
  writeFileSync(join(cjs, "package.json"), JSON.stringify({ type: "commonjs" }))
  for (const [dir, files] of [
    [esm, ["email.mjs", "handlers.mjs", "handlers.ts"]],
    [cjs, ["email.cjs", "handlers.cjs", "handlers.ts"]]
  ] as const)
    for (const f of files) cpSync(join(FIXTURES, dir === esm ? "esm" : "cjs", f), join(dir, f))
  installEnv = userEnv({ npm_config_better_sqlite3_local_prebuilds: prebuilds })
  await ok("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], app, {
    env: installEnv,
    timeoutMs: SETUP_TIMEOUT_MS
  })
}, SETUP_TIMEOUT_MS)

afterAll(() => {
  for (const child of engines) child.kill("SIGKILL")
  rmSync(work, { recursive: true, force: true })
})

describe("the packed tarball", () => {
  it("holds the build, the bin and the documents, and nothing of the repository's own", () => {
    const paths = packed.files.map((f) => f.path)
    for (const f of ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "bin/jobledger.mjs", "dist/esm/src/index.js", "dist/esm/src/index.d.ts", "dist/esm/src/cli/main.js", "dist/cjs/src/index.js", "dist/cjs/src/index.d.ts", "dist/cjs/package.json", "src/index.ts", "dist/esm/src/log/sqlite-writer-worker.js", "dist/cjs/src/log/sqlite-writer-worker.js", "dist/esm/src/log/sqlite-scanner-worker.js", "dist/cjs/src/log/sqlite-scanner-worker.js", "dist/esm/src/log/sqlite-checkpointer-worker.js", "dist/cjs/src/log/sqlite-checkpointer-worker.js"])
      expect(paths).toContain(f)
    const stray = paths.filter((p) => /^(test|bench|examples|scripts|scratch|\.kafka|\.jobledger|\.ci|coverage)\/|^tsconfig|^vitest|^docker-compose|\.tsbuildinfo$/.test(p))
    expect(stray).toEqual([])
    // the CLI never ships in the CommonJS build (it runs from dist/esm)
    expect(paths.filter((p) => p.startsWith("dist/cjs/src/cli/"))).toEqual([])
  })

  it("passes attw (types resolve in node10, node16 ESM and CJS, bundler) and publint", async () => {
    const attw = await run(join(ROOT, "node_modules", ".bin", "attw"), [tarball, "--format", "ascii"], work, { env: userEnv() })
    expect(attw.code, `${attw.stdout}\n${attw.stderr}`).toBe(0)
    expect(attw.stdout).toContain("No problems found")
    const publint = await run(join(ROOT, "node_modules", ".bin", "publint"), ["run", tarball, "--strict"], work, { env: userEnv() })
    expect(publint.code, `${publint.stdout}\n${publint.stderr}`).toBe(0)
    expect(publint.stdout).toContain("All good")
  }, TEST_TIMEOUT_MS)

  it("installs without tsx (only an optional peer), and the bin starts from compiled JavaScript", async () => {
    expect(existsSync(join(app, "node_modules", "jobledger", "dist", "esm", "src", "index.js"))).toBe(true)
    expect(existsSync(join(app, "node_modules", "tsx"))).toBe(false)
    // the bin itself: npx takes `--version` and `--help` for its own
    const version = await jobledger(esm, ["--version"])
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout.trim()).toBe(PKG.version)
    const help = await jobledger(cjs, ["--help"])
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toMatch(/^Usage: jobledger <command>/m)
  }, TEST_TIMEOUT_MS)
})

const logs = [
  { name: "the default SQLite log", env: {} as Record<string, string> },
  ...(kafkaBrokers === undefined ? [] : [{ name: "Kafka", env: { JOBLEDGER_LOG: `kafka://${kafkaBrokers}` } }])
]

describe.each(logs)("the seed's email example with plain node, on $name", ({ env }) => {
  it.each([
    { kind: "an ES module project", dir: esm, script: "email.mjs", entry: "dist/esm/src/index.js" },
    { kind: "a CommonJS project", dir: cjs, script: "email.cjs", entry: "dist/cjs/src/index.js" }
  ])(
    "runs in $kind, and npx jobledger stats reads the log it wrote",
    async ({ dir, script, entry }) => {
      const queue = uniqueQueue("email")
      const r = await ok(process.execPath, [script, queue], dir, { env: userEnv(env) })
      const out = JSON.parse(lastLine(r.stdout)) as { id: string; state: string; result: unknown; entry: string }
      expect(out).toMatchObject({ state: "completed", result: { sent: true, to: "user@example.com" } })
      // the exports map sent each kind of project to its own build
      expect(out.entry.replace(/^file:\/\//, "")).toBe(join(app, "node_modules", "jobledger", entry))
      if (env.JOBLEDGER_LOG === undefined) expect(existsSync(join(dir, ".jobledger", "jobs.db"))).toBe(true)
      const stats = await npxJobledger(dir, ["stats", queue, "--json"], env)
      expect(stats.code, stats.stderr).toBe(0)
      expect(JSON.parse(stats.stdout)).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0, delayed: 0, paused: 0 })
      const job = await jobledger(dir, ["job", queue, out.id, "--json"], env)
      expect(job.code, job.stderr).toBe(0)
      expect((JSON.parse(job.stdout) as { job: { state: string } }).job.state).toBe("completed")
    },
    TEST_TIMEOUT_MS
  )
})

/** An engine on `handlers` in `dir` completes a job added by the CLI, then stops on SIGINT with status 0. */
const engineRuns = async (dir: string, handlers: string, via: string) => {
  const queue = uniqueQueue("handlers")
  const engine = await startEngine(dir, handlers, queue)
  engines.push(engine.child)
  const added = await jobledger(dir, ["add", queue, "send-email", "--data", '{"email":"ada@example.com"}'])
  expect(added.code, added.stderr).toBe(0)
  await statsUntil(dir, queue, (s) => s.completed === 1, "the job to complete")
  const job = await jobledger(dir, ["job", queue, lastLine(added.stdout), "--json"])
  expect((JSON.parse(job.stdout) as { job: { result: unknown } }).job.result).toEqual({ to: "ada@example.com", via })
  engine.child.kill("SIGINT")
  expect(await engine.exited, engine.stderr()).toBe(0)
}

/** A script (for `node -e`) that writes one record through the installed build's SQLite writer thread, scans it back through its scanner thread, checkpoints on its checkpointer thread, and prints what came back. */
const writerProbe = (build: "esm" | "cjs") => {
  const dist = join(app, "node_modules", "jobledger", "dist", build, "src", "log")
  const load = (file: string) => (build === "esm" ? `await import(${JSON.stringify(pathToFileURL(join(dist, file)).href)})` : `require(${JSON.stringify(join(dist, file))})`)
  const body = `
    const { mkdtempSync } = require("node:fs"); const { join } = require("node:path"); const { tmpdir } = require("node:os")
    const { openSqliteStore } = ${load("sqlite-store.js")}
    const { SqliteWriter } = ${load("sqlite-writer.js")}
    const path = join(mkdtempSync(join(tmpdir(), "jobledger-writer-probe-")), "w.db")
    const store = openSqliteStore({ path, synchronous: "NORMAL" })
    store.ensureTopic("t", 1)
    const writer = new SqliteWriter({ path, synchronous: "NORMAL" })
    const written = await writer.appendAll([{ topic: "t", records: [{ key: "k", value: "v" }] }], Date.now())
    const { scanOffThread } = ${load("sqlite-scanner.js")}
    const scanned = []
    for await (const batch of scanOffThread(path, "t", 0, 0, 1, () => { throw new Error("scanned on the main thread, not by its worker") })) scanned.push(...batch.values)
    const { WalCheckpointer } = ${load("sqlite-checkpointer.js")}
    const checkpointer = new WalCheckpointer({ path, synchronous: "NORMAL" }, (pages) => store.autoCheckpoint(pages))
    checkpointer.start()
    const until = async (holds) => { for (let i = 0; i < 1000 && !holds(); i++) await new Promise((r) => setTimeout(r, 10)) }
    await until(() => checkpointer.active)
    checkpointer.committed()
    await until(() => checkpointer.checkpoints > 0)
    console.log(JSON.stringify({ offset: written[0].offset, threaded: writer.started, read: store.read("t", 0, 0, 10).map((r) => r.value), scanned, checkpointed: checkpointer.checkpoints > 0 }))
    checkpointer.close(); writer.close(); store.close()`
  return build === "esm" ? `import { createRequire } from "node:module"; const require = createRequire(import.meta.url); ${body}` : `(async () => { ${body} })()`
}

/**
 * A script (for `node -e`) that imports the installed package, then serves `metrics()` of a
 * queue: prom-client must load only then (it is an optional cost, see src/lazy-require.ts).
 */
const metricsProbe = (build: "esm" | "cjs") => {
  const body = `
    const { mkdtempSync } = require("node:fs"); const { join } = require("node:path"); const { tmpdir } = require("node:os")
    const loaded = () => Object.keys(require.cache).some((k) => k.includes("/node_modules/prom-client/"))
    const { JobQueue, metrics } = ${build === "esm" ? "await import(\"jobledger\")" : "require(\"jobledger\")"}
    const atImport = loaded()
    const log = "sqlite:" + join(mkdtempSync(join(tmpdir(), "jobledger-metrics-probe-")), "m.db")
    const q = new JobQueue("probe", { log }); await q.add("noop", {}); await q.close()
    const m = metrics({ log }); await m.ready()
    const text = await m.text(); await m.close()
    console.log(JSON.stringify({ atImport, afterMetrics: loaded(), served: text.includes("jobledger_jobs_added_total") }))`
  return build === "esm" ? `import { createRequire } from "node:module"; const require = createRequire(import.meta.url); ${body}` : `(async () => { ${body} })()`
}

describe("jobledger engine in the installed package, without tsx", () => {
  it.each(["esm", "cjs"] as const)(
    "the %s build writes through its SQLite writer thread, scans on its scanner thread and checkpoints on its checkpointer thread (the workers' entries ship and load without tsx, whatever the process's flags)",
    async (build) => {
      // flags a worker would refuse if it were handed them: V8's, and -e's --input-type
      const flags = ["--max-old-space-size=512", "--expose-gc", ...(build === "esm" ? ["--input-type=module"] : [])]
      const r = await ok(process.execPath, [...flags, "-e", writerProbe(build)], build === "esm" ? esm : cjs, { env: userEnv() })
      expect(JSON.parse(lastLine(r.stdout))).toEqual({ offset: 0, threaded: true, read: ["v"], scanned: ["v"], checkpointed: true })
    },
    TEST_TIMEOUT_MS
  )

  it.each(["esm", "cjs"] as const)(
    "the %s build loads prom-client only once metrics() is used, and serves them then",
    async (build) => {
      const r = await ok(process.execPath, [...(build === "esm" ? ["--input-type=module"] : []), "-e", metricsProbe(build)], build === "esm" ? esm : cjs, { env: userEnv() })
      expect(JSON.parse(lastLine(r.stdout))).toEqual({ atImport: false, afterMetrics: true, served: true })
    },
    TEST_TIMEOUT_MS
  )

  it("runs a .mjs handlers module in an ES module project", () => engineRuns(esm, "./handlers.mjs", "handlers.mjs"), TEST_TIMEOUT_MS)
  it("runs a .cjs handlers module in a CommonJS project", () => engineRuns(cjs, "./handlers.cjs", "handlers.cjs"), TEST_TIMEOUT_MS)

  it(
    "refuses a .ts handlers module with one line naming the fix",
    async () => {
      const r = await jobledger(esm, ["engine", "--handlers", "./handlers.ts"], { PACKAGE_TEST_QUEUE: "q" })
      expect(r.code).toBe(1)
      expect(r.stderr.trim()).toMatch(/^jobledger: --handlers \.\/handlers\.ts is TypeScript, .*tsx is not installed: run `npm install --save-dev tsx`/)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
    },
    TEST_TIMEOUT_MS
  )
})

describe("with tsx and @types/node added to the project", () => {
  beforeAll(async () => {
    const versionOf = (name: string) => (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version
    await ok("npm", ["install", "--save-dev", "--no-audit", "--no-fund", "--prefer-offline", `tsx@${versionOf("tsx")}`, `@types/node@${versionOf("@types/node")}`], app, {
      env: installEnv,
      timeoutMs: SETUP_TIMEOUT_MS
    })
  }, SETUP_TIMEOUT_MS)

  it("runs a .ts handlers module in an ES module project", () => engineRuns(esm, "./handlers.ts", "esm/handlers.ts"), TEST_TIMEOUT_MS)
  it("runs a .ts handlers module in a CommonJS project", () => engineRuns(cjs, "./handlers.ts", "cjs/handlers.ts"), TEST_TIMEOUT_MS)

  it.each([
    { resolution: "nodenext (an .mts and a .cts file)", config: "tsconfig.nodenext.json" },
    { resolution: "bundler", config: "tsconfig.bundler.json" }
  ])(
    "the README example type-checks with strict, moduleResolution $resolution, and Data flows into handlers and events",
    async ({ config }) => {
      const types = join(app, "types")
      mkdirSync(types, { recursive: true })
      cpSync(join(FIXTURES, "types", config), join(types, config))
      writeFileSync(join(types, "readme.mts"), consumer(false))
      writeFileSync(join(types, "readme.cts"), consumer(true))
      writeFileSync(join(types, "readme.ts"), consumer(false))
      const tsc = await run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(types, config)], types)
      expect(tsc.code, `${tsc.stdout}\n${tsc.stderr}`).toBe(0)
    },
    TEST_TIMEOUT_MS
  )
})
