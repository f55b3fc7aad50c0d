"""Table [reboot_blindspot] of the configuration under test (see this folder's README).

The configuration under test is the monitoring: a Prometheus alerting-rule
file (`rules`) and the alert in it that must page (`alert`) after a kernel
panic that reboots the server: be firing within `max_alert_s` of Prometheus
scraping the rebooted node, up again with its server process gone. The rule file is
checked with `promtool check rules`, and must name the alert, before any
guest starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from repro.harness.services import prometheus


@dataclass(frozen=True)
class RebootBlindspotConfig:
    # Prometheus alerting rules (YAML), loaded by the Prometheus on the runner that scrapes
    # the guest's node exporter as job "node"; a path relative to the TOML file
    rules: Path = Path("reboot_blindspot/fixed.yml")
    alert: str = "ServerDown"        # the alert (alertname) that must fire
    # ... by firing within this many seconds of Prometheus scraping the rebooted node (its new
    # boot time) with its server process gone: from there, so a slow reboot leaves a rule's
    # `for:` its time
    max_alert_s: float = 40.0
    quiet_s: float = 10.0            # control window before the panic: the alert must not fire
    scrape_interval_s: float = 1.0   # Prometheus's scrape interval (and scrape timeout)
    evaluation_interval_s: float = 1.0  # Prometheus's rule evaluation interval
    heartbeat_interval_s: float = 1.0   # the harness's own boot-id heartbeat (TCP + ssh)
    provider: str = "qemu"           # a real kernel panic needs a host with its own kernel

    PROFILES: ClassVar[dict[str, dict[str, object]]] = {
        "full": {"quiet_s": 60.0, "scrape_interval_s": 5.0, "evaluation_interval_s": 5.0,
                 "max_alert_s": 90.0},
    }

    def validate(self) -> None:
        if not self.alert or not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", self.alert):
            raise ValueError(f"alert must be a Prometheus alert name, got {self.alert!r}")
        if not 5 <= self.max_alert_s <= 600:
            raise ValueError("max_alert_s must be between 5 and 600")
        if not 0.2 <= self.scrape_interval_s <= 60 or not 0.2 <= self.evaluation_interval_s <= 60:
            raise ValueError("scrape_interval_s and evaluation_interval_s must be between "
                             "0.2 and 60")
        if self.quiet_s < 3 * max(self.scrape_interval_s, self.evaluation_interval_s):
            raise ValueError("quiet_s must be at least 3 scrape and evaluation intervals (the "
                             "control window must see the rules evaluated)")
        if not 0.2 <= self.heartbeat_interval_s <= 10:
            raise ValueError("heartbeat_interval_s must be between 0.2 and 10")
        if self.provider != "qemu":
            raise ValueError("provider must be \"qemu\": the incident panics its host's kernel "
                             "(Docker hosts share the runner's)")
        complaint = prometheus.check_rules(self.rules)
        if complaint:
            raise ValueError(f"rules: {self.rules}: {complaint}")
        if not names_alert(self.rules.read_text(errors="replace"), self.alert):
            raise ValueError(f"rules: {self.rules} defines no alert named {self.alert!r} "
                             "(key alert)")


def names_alert(text: str, alert: str) -> bool:
    """Whether a rule file's text has an `alert: NAME` rule (input checking only: the
    oracle never reads the rules, it judges what Prometheus did)."""
    pattern = rf"^\s*(-\s*)?alert:\s*[\"']?{re.escape(alert)}[\"']?\s*(#.*)?$"
    return re.search(pattern, text, re.M) is not None
