"""Risk services: limits and channels from config (``config``), and the risk manager in
the update path and its operator override (``session``)."""

from risk.services.config import risk_config_apply, risk_spec_read
from risk.services.controls import (
    alert_channel_update,
    risk_limit_update,
    violation_acknowledge,
    violation_review,
)
from risk.services.session import (
    RiskManagerSession,
    risk_session_open,
    risk_state_dump,
    risk_state_load,
    strategy_resume,
)

__all__ = [
    "alert_channel_update",
    "RiskManagerSession",
    "risk_config_apply",
    "risk_limit_update",
    "risk_session_open",
    "risk_spec_read",
    "risk_state_dump",
    "risk_state_load",
    "strategy_resume",
    "violation_acknowledge",
    "violation_review",
]
