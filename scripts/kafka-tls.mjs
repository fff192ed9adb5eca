// TLS material for the secured test broker (scripts/kafka-broker.mjs startSecureBroker), made
// with the JDK's own `keytool` at test time, into the broker's directory. Nothing here is a
// real secret: every run makes a fresh CA, keys and store password that live as long as the
// broker's temporary directory.
//
// What is made (all under <dir>/):
//   ca.p12, ca.pem             a self-signed CA (EC P-256, basicConstraints CA:true)
//   broker.p12                 the broker's key and its CA-signed certificate chain (PKCS12),
//                              SAN dns:localhost, ip:127.0.0.1 — the broker's keystore
//   client.pem, client.key     a CA-signed client certificate and its private key (PEM), for
//                              the mTLS listener (ssl.client.auth=required)
//   wrong-ca.pem               an unrelated CA: a client trusting only it must refuse the broker
// The broker's truststore is ca.pem itself (ssl.truststore.type=PEM, Kafka ≥ 2.7).
//
// As a command, for the SASL_SSL variant of docker-compose.yml:
//   node scripts/kafka-tls.mjs <dir> [host…]     (default hosts: localhost 127.0.0.1)
// makes the same files for a broker known by those host names, plus what the apache/kafka
// image reads from /etc/kafka/secrets: keystore-creds (the store password) and
// kafka_server_jaas.conf (SCRAM login module).

import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import fs from "node:fs"
import path from "node:path"
import { isIP } from "node:net"
import { fileURLToPath } from "node:url"

/** keytool/java start faster with C1 only and the serial GC (each run is a fresh JVM). */
const FAST_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]

/**
 * keytool cannot write a private key as PEM (Node's TLS needs one for a client certificate):
 * this JDK program does, run with the source launcher (`java PemKey.java …`, JDK 11+).
 */
const PEM_KEY_JAVA = `import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

/** PemKey <store.p12> <password> <alias> <out.pem>: the entry's private key as unencrypted PKCS#8 PEM. */
public class PemKey {
  public static void main(String[] a) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(a[0])) { ks.load(in, a[1].toCharArray()); }
    Key key = ks.getKey(a[2], a[1].toCharArray());
    String b64 = Base64.getMimeEncoder(64, "\\n".getBytes()).encodeToString(key.getEncoded());
    Files.writeString(Path.of(a[3]), "-----BEGIN PRIVATE KEY-----\\n" + b64 + "\\n-----END PRIVATE KEY-----\\n");
  }
}
`

function run(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)))
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.filter((a) => !a.startsWith("-J")).slice(0, 3).join(" ")} failed (exit ${code}):\n${out}`))
    )
  })
}

/**
 * Makes a CA, a broker keystore signed by it, a client certificate and an unrelated CA in
 * `dir` (created if missing). Four rounds of keytool runs, independent ones in parallel
 * (~2-4 s). Returns the file paths and the store password.
 */
export async function makeTlsMaterial(dir, { log = () => {}, hosts = ["localhost", "127.0.0.1"] } = {}) {
  const san = `SAN=${hosts.map((h) => (isIP(h) ? `ip:${h}` : `dns:${h}`)).join(",")}`
  fs.mkdirSync(dir, { recursive: true })
  const t0 = Date.now()
  const pass = randomBytes(12).toString("hex")
  const f = (name) => path.join(dir, name)
  const keytool = (...args) => run("keytool", [...FAST_JVM.map((o) => `-J${o}`), ...args], dir)
  const store = (file) => ["-keystore", f(file), "-storetype", "PKCS12", "-storepass", pass, "-keypass", pass]
  const keypair = (alias, file, dname, ...ext) =>
    keytool("-genkeypair", "-alias", alias, "-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname, "-validity", "7", ...ext, ...store(file))
  const exportCa = (file, out) => keytool("-exportcert", "-rfc", "-alias", "ca", ...store(file), "-file", f(out))
  const sign = (csr, out, ...ext) =>
    keytool("-gencert", "-rfc", "-alias", "ca", ...store("ca.p12"), "-infile", f(csr), "-outfile", f(out), "-validity", "7", ...ext)

  // 1. keys (the CAs self-signed)
  await Promise.all([
    keypair("ca", "ca.p12", "CN=jobledger test CA", "-ext", "bc:c"),
    keypair("ca", "wrong-ca.p12", "CN=jobledger unrelated CA", "-ext", "bc:c"),
    keypair("broker", "broker.p12", `CN=${hosts[0]}`),
    keypair("client", "client.p12", "CN=jobledger-test-client")
  ])
  // 2. CA certificates out, signing requests
  await Promise.all([
    exportCa("ca.p12", "ca.pem"),
    exportCa("wrong-ca.p12", "wrong-ca.pem"),
    keytool("-certreq", "-alias", "broker", ...store("broker.p12"), "-file", f("broker.csr")),
    keytool("-certreq", "-alias", "client", ...store("client.p12"), "-file", f("client.csr"))
  ])
  // 3. the CA signs both
  await Promise.all([
    sign("broker.csr", "broker.crt", "-ext", san, "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth"),
    sign("client.csr", "client.crt", "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=clientAuth")
  ])
  // 4. the broker's chain into its keystore; the client's key out as PEM
  fs.writeFileSync(f("broker-chain.pem"), fs.readFileSync(f("broker.crt"), "utf8") + fs.readFileSync(f("ca.pem"), "utf8"))
  fs.writeFileSync(f("PemKey.java"), PEM_KEY_JAVA)
  await Promise.all([
    keytool("-importcert", "-noprompt", "-alias", "broker", "-file", f("broker-chain.pem"), ...store("broker.p12")),
    run("java", [...FAST_JVM, f("PemKey.java"), f("client.p12"), pass, "client", f("client.key")], dir)
  ])
  fs.copyFileSync(f("client.crt"), f("client.pem"))
  for (const tmp of ["broker.csr", "client.csr", "broker-chain.pem", "PemKey.java", "ca.p12", "wrong-ca.p12", "client.p12"]) fs.rmSync(f(tmp), { force: true })
  log(`made a CA, broker keystore and client certificate with keytool in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return {
    dir,
    storePassword: pass,
    keystoreFile: f("broker.p12"),
    caFile: f("ca.pem"),
    wrongCaFile: f("wrong-ca.pem"),
    clientCertFile: f("client.pem"),
    clientKeyFile: f("client.key")
  }
}

// ---------------------------------------------------------------- command line

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, ...hosts] = process.argv.slice(2)
  if (!dir) {
    process.stderr.write("usage: node scripts/kafka-tls.mjs <dir> [host…]\n")
    process.exit(1)
  }
  const made = await makeTlsMaterial(path.resolve(dir), { hosts: hosts.length > 0 ? hosts : undefined, log: (m) => process.stderr.write(`${m}\n`) })
  fs.writeFileSync(path.join(made.dir, "keystore-creds"), made.storePassword, { mode: 0o600 })
  fs.writeFileSync(
    path.join(made.dir, "kafka_server_jaas.conf"),
    "KafkaServer {\n  org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\n"
  )
  process.stdout.write(`${made.dir}: broker.p12 (keystore-creds), ca.pem, client.pem/client.key, kafka_server_jaas.conf\n`)
}
