"""A loopback HTTP server that speaks the four gateways' protocols from their documents (paths, fields,
answer formats, limits, error codes, destructive report reads), with knobs for latency, rate limits,
faults, balance, keywords, blacklists and delivery outcomes, and a ledger of all it accepted.

    with run_simulator(SimulatorConfig(report_delay=0)) as sim:
        httpx.post(sim.base_url + "/Services/MsgSend.aspx/SendMsg", data={...})
        sim.ledger()["accepted"]
"""

from __future__ import annotations

from dispatcher.simulator.config import Account, SimulatorConfig, default_accounts
from dispatcher.simulator.runner import (
    RunningSimulator,
    SimulatorProcess,
    run_simulator,
    start_simulator_process,
)

__all__ = [
    "Account",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorProcess",
    "default_accounts",
    "run_simulator",
    "start_simulator_process",
]
