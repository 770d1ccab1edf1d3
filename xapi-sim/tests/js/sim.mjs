// Start the xapi-sim binary (XAPI_SIM_BIN, else built with cargo) and read the URLs it prints.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const WORKSPACE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

function binary() {
  if (process.env.XAPI_SIM_BIN) return process.env.XAPI_SIM_BIN
  execFileSync('cargo', ['build', '-q', '-p', 'xapi-sim'], { cwd: WORKSPACE, stdio: 'inherit' })
  const target = resolve(WORKSPACE, process.env.CARGO_TARGET_DIR ?? 'target')
  return join(target, 'debug', 'xapi-sim')
}

/** A running simulator with one URL per pool (`urls.primary`, `urls.dr` for the demo). */
export async function startSim(...args) {
  const state = mkdtempSync(join(tmpdir(), 'xapi-sim-js-'))
  const child = spawn(binary(), ['--listen', '127.0.0.1:0', '--state', state, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const expected = args.includes('demo') ? 2 : 1
  const urls = {}
  const lines = createInterface({ input: child.stdout })
  await new Promise((resolvePromise, reject) => {
    child.once('exit', code => reject(new Error(`xapi-sim exited (${code}) before listening`)))
    lines.on('line', line => {
      const match = /^xapi-sim listening on (\S+)(?: pool=(\S+))?/.exec(line)
      if (match) urls[match[2] ?? 'sim'] = match[1]
      if (Object.keys(urls).length === expected) resolvePromise()
    })
  })
  return {
    urls,
    stop() {
      child.kill('SIGKILL')
      rmSync(state, { recursive: true, force: true })
    },
  }
}
