"""The compose `ga` profile's files, used by the real programs: vmalert's rules, Alertmanager's routing,
vmauth's users and the Grafana dashboard's queries, against a VictoriaMetrics scraping a real WVS."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import free_port
from tests.metrics_stack import ROOT, binary, query, run_workload, running, wait_scraped, wait_until

CONTRIB = ROOT / "contrib"
GRAFANA_READER = ("grafana", "grafana-secret")  # contrib/vmauth.yml and the Grafana datasource
DASHBOARD_RANGES = {"$__rate_interval": "1m", "$__range": "10m"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((CONTRIB / "grafana" / "dashboards" / "wvs-overview.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_alert_rules_and_alertmanager_config_pass_their_own_checks() -> None:
    rules = subprocess.run(
        [
            binary("vmalert", "victoria-metrics"),
            "-dryRun",
            f"-rule={CONTRIB / 'alerts.yml'}",
            "-rule.validateTemplates",
        ],
        capture_output=True,
        text=True,
    )
    assert rules.returncode == 0, rules.stderr
    routing = subprocess.run(
        [binary("amtool", "prometheus-alertmanager"), "check-config", str(CONTRIB / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert routing.returncode == 0, routing.stdout + routing.stderr


def test_the_ga_profile_mounts_files_the_repository_has() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    ga = {name for name, service in services.items() if "ga" in service.get("profiles", [])}
    assert ga == {"vmauth", "vmalert", "alertmanager", "grafana"}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
    grafana = yaml.safe_load((CONTRIB / "grafana" / "provisioning" / "datasources" / "wvs.yml").read_text())
    datasource = grafana["datasources"][0]
    assert (datasource["basicAuthUser"], datasource["secureJsonData"]["basicAuthPassword"]) == GRAFANA_READER
    dashboard_uids = {
        target["datasource"]["uid"]
        for panel in json.loads((CONTRIB / "grafana" / "dashboards" / "wvs-overview.json").read_text())["panels"]
        for target in panel["targets"]
    }
    assert dashboard_uids == {datasource["uid"]}


async def test_a_dead_task_shows_on_the_dashboard_and_reaches_alertmanager(
    observed: dict[str, str], mount: Path, tmp_path: Path
) -> None:
    await run_workload(observed["api"], mount, "alerting")  # 3 snapshots succeed, 1 goes DEAD
    await asyncio.to_thread(wait_scraped, observed["metrics"])
    await asyncio.to_thread(check_dashboard_and_alerts, observed["metrics"], tmp_path)


def check_dashboard_and_alerts(metrics_url: str, tmp_path: Path) -> None:
    """vmauth with the compose users in front of ``metrics_url``; every dashboard query through it as
    Grafana; vmalert with the shipped rules, through it, notifying a real Alertmanager."""
    vmauth, vmalert = binary("vmauth", "victoria-metrics"), binary("vmalert", "victoria-metrics")
    alertmanager = binary("prometheus-alertmanager", "prometheus-alertmanager")
    auth_config = tmp_path / "vmauth.yml"  # the compose file's users, pointed at this test's VictoriaMetrics
    auth_config.write_text((CONTRIB / "vmauth.yml").read_text().replace("http://vmsingle:8428", metrics_url))
    auth_port, am_port, alert_port = free_port(), free_port(), free_port()
    proxy, manager = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{am_port}"
    with (
        running(vmauth, f"-auth.config={auth_config}", f"-httpListenAddr=127.0.0.1:{auth_port}"),
        running(
            alertmanager,
            f"--config.file={CONTRIB / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ),
    ):
        wait_until(lambda: httpx.get(f"{manager}/-/ready").status_code == 200, what="Alertmanager")
        wait_until(lambda: httpx.get(f"{proxy}/health").status_code in (200, 401), what="vmauth")
        anonymous = httpx.get(f"{proxy}/api/v1/query", params={"query": "up"})
        assert anonymous.status_code == 401
        wrong = httpx.get(f"{proxy}/api/v1/query", params={"query": "up"}, auth=("grafana", "wrong"))
        assert (
            wrong.status_code in (400, 401) and "cannot find the provided auth token" in wrong.text
        )  # older vmauth: 400

        for expr in dashboard_queries():
            for variable, value in DASHBOARD_RANGES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unsubstituted variable in {expr}"
            query(proxy, expr, auth=GRAFANA_READER)  # each panel's query runs (raises otherwise)
        success_rate = dashboard_queries()[0].replace("$__range", "10m")
        rates = {row["metric"]["op"]: float(row["value"][1]) for row in query(proxy, success_rate, auth=GRAFANA_READER)}
        assert rates["snapshot_create"] == 0.75

        alert_flags = (
            f"-rule={CONTRIB / 'alerts.yml'}",
            f"-datasource.url={proxy}",
            "-datasource.basicAuth.username=vmalert",
            "-datasource.basicAuth.password=vmalert-secret",
            f"-notifier.url={manager}",
            "-evaluationInterval=1s",
            f"-httpListenAddr=127.0.0.1:{alert_port}",
        )
        with running(vmalert, *alert_flags):

            def active_alerts() -> list[dict[str, Any]]:
                return list(httpx.get(f"{manager}/api/v2/alerts").json())

            wait_until(
                lambda: any(alert["labels"].get("alertname") == "WVSTaskDead" for alert in active_alerts()),
                what="WVSTaskDead in Alertmanager",
            )
            alerts = active_alerts()
    assert {alert["labels"]["alertname"] for alert in alerts} == {"WVSTaskDead"}, "nothing else is wrong here"
    (dead,) = alerts
    assert dead["labels"]["op"] == "snapshot_create"
    assert re.match(r"1 snapshot_create task\(s\) went DEAD", dead["annotations"]["summary"])
