"""PagerDuty Events API v2: trigger on an opening (or a channel test), resolve on a
recovery, deduplicated on the violation."""

from __future__ import annotations

from risk.alerts.transports.base import DeliveryError, config_required, config_timeout
from risk.alerts.transports.web import checked_url, excerpt, http_send
from risk.engine import alert_formats as fmt
from risk.models import AlertDelivery


def send_pagerduty(config: dict, msg: fmt.AlertMessage, delivery: AlertDelivery):
    """Events API v2: trigger on an opening (or a channel test), resolve on a recovery."""
    routing_key = config_required(config, "routing_key")
    api_base = checked_url(config.get("api_base") or fmt.PAGERDUTY_API_BASE)
    if delivery.violation_id:
        dedup_key = fmt.pagerduty_dedup_key(delivery.violation_id)
        when = delivery.violation.opened_at
    else:
        dedup_key, when = f"quantsite-test-{delivery.pk}", delivery.created_at
    resolve = delivery.event == AlertDelivery.Event.RESOLVE
    request = fmt.pagerduty_request(
        msg,
        routing_key=routing_key,
        action="resolve" if resolve else "trigger",
        dedup_key=dedup_key,
        timestamp=when.isoformat(),
        api_base=api_base,
        timeout=config_timeout(config),
    )

    def job() -> None:
        status, content = http_send(request)
        try:
            fmt.pagerduty_accepted(status, content)
        except ValueError as exc:
            raise DeliveryError(f"{exc}: {excerpt(content)}") from None

    return job
