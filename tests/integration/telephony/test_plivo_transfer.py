"""Transfer to a person on Plivo through its Transfer a Call API, against the strict fake."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sutradhar.testing.simulator import SimConfig, simulate
from tests.fakes.plivo_rest import FakePlivoRest
from tests.support.server import RecordingRecorder
from tests.support.server import scripted_server as server_with

CALL = "11111111-2222-3333-4444-555555555555"


async def test_pressing_0_transfers_the_call_through_plivos_transfer_api() -> None:
    """Plivo's Transfer a Call (strict fake): the A leg is sent to /plivo/transfer, whose XML
    (fetched signed, as Plivo does) dials TRANSFER_NUMBER."""
    recorder = RecordingRecorder()
    async with FakePlivoRest() as plivo:
        with server_with(recorder, plivo_auth_id=plivo.auth_id, plivo_auth_token=plivo.auth_token,
                         plivo_api_base=plivo.base_url, transfer_number="+919999999999") as srv:
            result = await simulate(SimConfig(srv.url, [], carrier="plivo", call_sid=CALL, language="en-IN",
                                              dtmf=[("0", 0.5)], hang_up=False, reply_wait_s=5, timeout_s=20))
            xml = await plivo.fetch_transfer_xml(CALL)
    assert plivo.transfers[CALL] == {"legs": "aleg", "aleg_url": f"{srv.url}/plivo/transfer", "aleg_method": "POST"}
    assert xml.status_code == 200
    number = ET.fromstring(xml.text).find("./Dial/Number")
    assert number is not None and number.text == "+919999999999"
    assert result.closed_by_server and recorder.ended[0][1] == "transferred"
