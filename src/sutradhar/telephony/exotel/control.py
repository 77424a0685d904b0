"""Exotel call control: a transfer to a person is the flow's next applets, not a REST call.

Exotel's Voicebot applet hands the call back to its flow when our socket closes. The flow goes
on to a Passthru applet pointed at `GET /exotel/handoff`, whose documented binary decision routes
the call: 200 OK to choice A (a Connect applet dialling the person, TRANSFER_NUMBER), 302 Found to
choice B (Hangup). So transferring is: note the call as handed off (shared state, as the Passthru
request may reach another worker), then close the socket (the Transport does).
"""

from __future__ import annotations

from loguru import logger

from sutradhar.ops.shared_state import CallHandoffs
from sutradhar.telephony.transport import CallControl


class ExotelControl(CallControl):
    def __init__(self, handoffs: CallHandoffs) -> None:
        self.handoffs = handoffs

    async def transfer(self, carrier_call_id: str, number: str) -> bool:
        if not carrier_call_id:
            return False
        try:
            await self.handoffs.set(carrier_call_id, number)
        except Exception as exc:  # noqa: BLE001 - Redis down: the Passthru would not find it
            logger.bind(call_id=carrier_call_id, stage="exotel").warning("could not note the transfer: {}", exc)
            return False
        return True
