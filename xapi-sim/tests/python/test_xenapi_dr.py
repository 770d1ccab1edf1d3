"""A whole failover driven with the official XenAPI.py, in the order XenCenter's DR wizard
makes its calls: replication on the primary, `SR.probe` with `metadata=true` and
`DR_task.create` on the DR pool, `VDI.open_database` on the mirrored metadata VDI, the recovery
checks, `VM_appliance.recover`, a start in vApp order, `DR_task.destroy`."""

import time
import xml.dom.minidom

import XenAPI

from conftest import PASSWORD

MIRROR = {"target": "192.0.2.20", "targetIQN": "iqn.2026-11.org.xapi-sim:dr-mirror"}


def _login(url):
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", PASSWORD, "2.21", "xapi-sim pytest")
    return session


def _probed_sr_uuids(listing):
    document = xml.dom.minidom.parseString(listing)
    return [node.firstChild.data.strip() for node in document.getElementsByTagName("UUID")]


def test_failover_of_a_vapp_with_xenapi(start_sim):
    sim = start_sim("--scenario", "demo", "--clock-speed", "10000")
    primary = _login(sim.urls["primary"])
    dr = _login(sim.urls["dr"])
    try:
        p = primary.xenapi
        replicated = p.SR.get_by_name_label("Replicated iSCSI (DR)")[0]
        sr_uuid = p.SR.get_uuid(replicated)
        p.SR.enable_database_replication(replicated)
        web_db = p.VM.get_by_name_label("web-db")[0]
        p.VM.set_name_description(web_db, "replicated before the disaster")

        d = dr.xenapi
        host = d.host.get_all()[0]
        listing = d.SR.probe(host, MIRROR, "lvmoiscsi", {"metadata": "true"})
        assert _probed_sr_uuids(listing) == [sr_uuid]

        task = d.DR_task.create("lvmoiscsi", MIRROR, [sr_uuid])
        assert len(d.DR_task.get_introduced_SRs(task)) == 1
        metadata_vdis = [
            ref for ref, vdi in d.VDI.get_all_records().items() if vdi["type"] == "metadata"
        ]
        assert len(metadata_vdis) == 1
        pool_uuid = d.VDI.read_database_pool_uuid(metadata_vdis[0])
        assert pool_uuid == p.pool.get_uuid(p.pool.get_all()[0])

        # a session on the database read from the mirror, as XenCenter opens it
        foreign_ref = d.VDI.open_database(metadata_vdis[0])
        foreign = XenAPI.Session(sim.urls["dr"])
        foreign._session = foreign_ref
        f = foreign.xenapi
        apps = f.VM_appliance.get_by_name_label("web-shop")
        assert len(apps) == 1
        f.VM_appliance.assert_can_be_recovered(apps[0], dr.handle)
        on_nfs = f.VM.get_by_name_label("dns-2")[0]
        try:
            f.VM.assert_can_be_recovered(on_nfs, dr.handle)
            raise AssertionError("a VM on an unmirrored SR cannot be recovered")
        except XenAPI.Failure as failure:
            assert failure.details[0] == "VM_REQUIRES_SR"
        assert len(f.VM.get_SRs_required_for_recovery(on_nfs, dr.handle)) == 1

        # the task lives in the pool's own database: XenCenter polls it with its own session
        recover = f.Async.VM_appliance.recover(apps[0], dr.handle, False)
        while d.task.get_status(recover) == "pending":
            time.sleep(0.05)
        assert d.task.get_status(recover) == "success", d.task.get_error_info(recover)
        # XenAPI.py's logout expects its own login; end the metadata session with the raw call
        assert foreign.session.logout(foreign_ref)["Status"] == "Success"

        app = d.VM_appliance.get_by_name_label("web-shop")[0]
        members = d.VM_appliance.get_VMs(app)
        assert len(members) == 4
        recovered_db = d.VM.get_by_name_label("web-db")[0]
        assert d.VM.get_name_description(recovered_db) == "replicated before the disaster"
        assert d.VM.get_version(recovered_db) == "1"

        d.VM_appliance.start(app, False)
        assert {d.VM.get_power_state(vm) for vm in members} == {"Running"}

        d.DR_task.destroy(task)
        assert d.SR.get_by_uuid(sr_uuid)
    finally:
        primary.xenapi.session.logout()
        dr.xenapi.session.logout()
