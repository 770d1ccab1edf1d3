// Xen Orchestra's own client library (npm `xen-api`) drives the simulator the way XO drives a
// real pool: transport detection, login, `system.listMethods` introspection, the `event.from`
// object cache (rows leave it with their `del` events), Async calls watched through task
// events, `getResource` / `putResource` on the data plane (including the 1 PiB Content-Length
// upload of a stream of unknown length), errors, and the move to the master when the URL names
// a pool member (HOST_IS_SLAVE).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { Xapi } from 'xen-api'

import { startSim } from './sim.mjs'

const PASSWORD = 'xapi-sim'
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

let sim
before(async () => {
  sim = await startSim('--scenario', 'demo', '--clock-speed', '1000')
})
after(() => sim?.stop())

async function connect(transport) {
  const xapi = new Xapi({
    url: sim.urls.primary,
    auth: { user: 'root', password: PASSWORD },
    transport,
    // quiet: XO logs a warning for every upload of unknown length
    debounce: 10,
  })
  await xapi.connect()
  await xapi.objectsFetched
  return xapi
}

function cached(xapi, type) {
  return Object.values(xapi.objects.all).filter(object => object.$type === type)
}

async function readAll(body) {
  const parts = []
  for await (const part of body) parts.push(part)
  return Buffer.concat(parts)
}

// The way XO's uploads of unknown length really arrive: in pieces, pulled as the connection
// drains, the source ending some time after its last piece (a disk read, a remote). XO cuts the
// connection as soon as the request has been ended (`req.finished`), so a source that ends at
// once, with megabytes still queued in node, loses them whatever the server does.
async function* slowSource(buffer) {
  for (let at = 0; at < buffer.length; at += 64 << 10) {
    yield buffer.subarray(at, at + (64 << 10))
  }
  await new Promise(resolve => setTimeout(resolve, 2000))
}

function withLength(buffer) {
  const stream = Readable.from([buffer])
  stream.length = buffer.length
  return stream
}

for (const transport of ['auto', 'json-rpc', 'xml-rpc']) {
  describe(`over ${transport}`, () => {
    let xapi
    before(async () => {
      xapi = await connect(transport)
    })
    after(() => xapi?.disconnect())

    test('logs in and fills its object cache from event.from', async () => {
      assert.equal(xapi.status, 'connected')
      assert.equal(xapi.pool.name_label, 'primary')
      const vms = await xapi.call('VM.get_all')
      assert.equal(cached(xapi, 'VM').length, vms.length)
      assert.ok(cached(xapi, 'host').length >= 2)
      assert.ok(cached(xapi, 'SR').length >= 1)
      const master = xapi.getObjectByRef(xapi.pool.master)
      assert.equal(master.$type, 'host')
    })

    test('sees its own writes through events (barrier)', async () => {
      const vm = cached(xapi, 'VM').find(v => !v.is_control_domain && !v.is_a_template)
      await xapi.setField('VM', vm.$ref, 'name_description', `seen over ${transport}`)
      const fresh = await xapi.barrier(vm.$ref)
      assert.equal(fresh.name_description, `seen over ${transport}`)
    })

    test('exports with zstd and imports a stream of unknown length', async () => {
      const vm = cached(xapi, 'VM').find(v => v.name_label === 'legacy-crm')
      const response = await xapi.getResource('/export/', {
        query: { ref: vm.$ref, use_compression: 'zstd' },
        task: true,
      })
      const xva = await readAll(response.body)
      await response.task
      assert.deepEqual(xva.subarray(0, 4), ZSTD_MAGIC)

      // no length: XO sends Content-Length 1 PiB and relies on xapi answering first
      const imported = await xapi.putResource(Readable.from(slowSource(xva)), '/import/', {
        query: { sr_id: xapi.pool.default_SR },
        task: true,
      })
      assert.equal(imported.length, 1)
      const record = await xapi.getRecord('VM', imported[0])
      assert.equal(record.name_label, 'legacy-crm')
      assert.notEqual(record.uuid, vm.uuid, 'a plain import makes new UUIDs')

      const again = await xapi.putResource(withLength(xva), '/import/', {
        query: { sr_id: xapi.pool.default_SR },
        task: true,
      })
      assert.equal(again.length, 1)
      assert.notEqual(again[0], imported[0])
    })

    test('writes and reads a raw disk', async () => {
      const vdi = await xapi.call('VDI.create', {
        name_label: `xo raw ${transport}`,
        SR: xapi.pool.default_SR,
        virtual_size: 1 << 20,
        type: 'user',
        sharable: false,
        read_only: false,
        other_config: {},
        xenstore_data: {},
        sm_config: {},
        tags: [],
      })
      const pattern = Buffer.alloc(1 << 20, 0x5a)
      await xapi.putResource(withLength(pattern), '/import_raw_vdi/', {
        query: { format: 'raw', vdi },
        task: true,
      })
      const response = await xapi.getResource('/export_raw_vdi/', {
        query: { format: 'raw', vdi },
        task: true,
      })
      assert.deepEqual(await readAll(response.body), pattern)
    })

    test('forgets a destroyed snapshot, its VBDs and its VDIs', async () => {
      const vm = cached(xapi, 'VM').find(v => v.name_label === 'legacy-crm')
      const snapshotRef = await xapi.callAsync('VM.snapshot', vm.$ref, `xo snapshot ${transport}`)
      const snapshot = await xapi.barrier(snapshotRef)
      assert.equal(snapshot.is_a_snapshot, true)
      const vbdRefs = snapshot.VBDs
      assert.ok(vbdRefs.length >= 1, 'the snapshot has disks')
      const vdiRefs = vbdRefs
        .map(ref => xapi.getObjectByRef(ref).VDI)
        .filter(ref => ref !== 'OpaqueRef:NULL')
      assert.equal(vdiRefs.length, vbdRefs.length)
      // a snapshot has metrics of its own, as in xapi, which go with it
      assert.notEqual(snapshot.metrics, vm.metrics)
      assert.equal(xapi.getObjectByRef(snapshot.metrics).$type, 'VM_metrics')

      await xapi.call('VM.destroy', snapshotRef)
      for (const vdi of vdiRefs) await xapi.call('VDI.destroy', vdi)
      await xapi.barrier()

      assert.ok(!(await xapi.call('VM.get_all')).includes(snapshotRef))
      for (const ref of [snapshotRef, snapshot.metrics, ...vbdRefs, ...vdiRefs]) {
        assert.equal(xapi.getObjectByRef(ref, undefined), undefined, `${ref} left the cache`)
      }
      assert.ok(!xapi.getObjectByRef(vm.$ref).snapshots.includes(snapshotRef))
    })

    test('gets xapi errors with their codes and parameters', async () => {
      await assert.rejects(xapi.call('VM.get_record', 'OpaqueRef:nope'), error => {
        assert.equal(error.code, 'HANDLE_INVALID')
        assert.deepEqual(error.params, ['VM', 'OpaqueRef:nope'])
        return true
      })
      const running = cached(xapi, 'VM').find(v => v.power_state === 'Running' && !v.is_control_domain)
      await assert.rejects(xapi.callAsync('VM.start', running.$ref, false, false), error => {
        assert.equal(error.code, 'VM_BAD_POWER_STATE')
        assert.deepEqual(error.params, [running.$ref, 'halted', 'running'])
        return true
      })
      await assert.rejects(xapi.call('VM.no_such_message', running.$ref), error => {
        assert.equal(error.code, 'MESSAGE_METHOD_UNKNOWN')
        return true
      })
    })
  })
}

test('a wrong password is refused with SESSION_AUTHENTICATION_FAILED', async () => {
  const xapi = new Xapi({
    url: sim.urls.primary,
    auth: { user: 'root', password: 'wrong' },
    watchEvents: false,
  })
  await assert.rejects(xapi.connect(), error => {
    assert.equal(error.code, 'SESSION_AUTHENTICATION_FAILED')
    return true
  })
})

test('connecting to a pool member follows HOST_IS_SLAVE to the master', async () => {
  const master = await connect('xml-rpc')
  try {
    const port = new URL(sim.urls.primary).port
    const member = cached(master, 'host').find(host => host.$ref !== master.pool.master)
    assert.ok(member, 'the demo pool has a member')
    const xapi = new Xapi({
      url: `http://${member.address}:${port}`,
      auth: { user: 'root', password: PASSWORD },
      watchEvents: false,
    })
    await xapi.connect()
    try {
      assert.equal(xapi.pool.name_label, 'primary')
      assert.equal(xapi._url.hostname, master.getObjectByRef(master.pool.master).address)
    } finally {
      await xapi.disconnect()
    }
  } finally {
    await master.disconnect()
  }
})
