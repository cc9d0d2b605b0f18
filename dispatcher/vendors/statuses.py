"""What a delivery report's status means, and each vendor's name as the desk reads it.

The four gateways pass on the operators' statuses (CMPP/SMPP's, as the documents' examples show:
``DELIVRD``, ``UNDELIVRD``, ``EXPIRED`` ...). Operator gateway codes (``MK:0001``, ``DB:0140`` ...) are
the operator's own, undocumented by the vendors: said as such, with the code.
"""

from __future__ import annotations

from dispatcher.i18n import N_

# status: (Chinese, English)
REPORT_STATUSES: dict[str, tuple[str, str]] = {
    "DELIVRD": ("成功送达手机", "delivered to the phone"),
    "UNDELIVRD": ("运营商未能送达手机", "the operator could not deliver it"),
    "UNDELIV": ("运营商未能送达手机", "the operator could not deliver it"),
    "EXPIRED": (
        "有效期内未能送达（手机关机或不在服务区）",
        "not delivered in time (phone off or out of reach)",
    ),
    "REJECTD": ("被运营商拒收", "refused by the operator"),
    "DELETED": ("被运营商删除", "deleted by the operator"),
    "UNKNOWN": ("运营商未说明结果", "the operator gave no outcome"),
}
OPERATOR_CODE = ("运营商网关代码 %s", "operator gateway code %s")

# The vendor ids as people read them (exports, pages).
VENDOR_LABELS: dict[str, str] = {
    "webservice": N_("WebService gateway"),
    "yunxin": N_("Yunxin"),
    "trigger": N_("Trigger gateway"),
    "entinfo": N_("Entinfo"),
}


def status_meaning(status: str, chinese: bool) -> str:
    """What a report's ``status`` means, in Chinese or English; an operator's own code said with it."""
    key = status.strip().upper()
    known = REPORT_STATUSES.get(key)
    if known is not None:
        return known[0] if chinese else known[1]
    return (OPERATOR_CODE[0] if chinese else OPERATOR_CODE[1]) % status.strip()
