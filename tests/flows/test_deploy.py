"""deploy/prefect.yaml declares the flows `referrals serve` runs, on the same schedules."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import yaml

from referrals.cli.main import serve
from referrals.config import load_province
from support import ROOT


def test_every_deployment_points_at_a_real_flow_with_the_served_schedule() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {Path(d["entrypoint"].split(":")[0]).stem: d for d in config["deployments"]}
    assert set(deployments) == {"clock", "deliver", "sweep", "digest", "launch", "report"}
    for d in deployments.values():  # one province's installation: its name, pool and tag
        assert d["name"] == "{{ $REFERRALS_PROVINCE }}"
        assert "province:{{ $REFERRALS_PROVINCE }}" in d["tags"] and "referrals" in d["tags"]
    flows = {}
    for name, d in deployments.items():
        path, function = d["entrypoint"].split(":")
        spec = importlib.util.spec_from_file_location(f"entry_{name}", ROOT / path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        flows[name] = getattr(module, function).name
        assert d["work_pool"]["name"] == "referrals-{{ $REFERRALS_PROVINCE }}"
    assert flows == {
        "clock": "clock",
        "deliver": "deliver-notifications",
        "sweep": "sweep-deadlines",
        "launch": "launch-referral",
        "digest": "manager-digest",
        "report": "period-report",
    }
    defaults = {p.name: p.default for p in inspect.signature(serve).parameters.values()}
    assert deployments["clock"]["schedules"] == [{"interval": defaults["every"]}]
    scheduled = {name for name, d in deployments.items() if d.get("schedules")}
    assert scheduled == {"clock", "digest"}  # issue 21: 12 runs an hour, and the digest
    province = load_province(ROOT / "referrals" / "config" / "khanh-hoa").province
    at = province.digest.at
    assert deployments["digest"]["schedules"] == [
        {"cron": f"{at.minute} {at.hour} * * *", "timezone": "Asia/Ho_Chi_Minh"}
    ]


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    """Each unit, with /opt/referrals pointed at this checkout, passes `systemd-analyze verify`
    without a warning; the worker serves the pool deploy/prefect.yaml names."""
    env = tmp_path / "province.env"
    env.write_text("REFERRALS_WEB_PORT=8001\n")
    units = sorted((ROOT / "deploy" / "systemd").iterdir())
    assert {u.name for u in units} >= {
        "referrals-prefect.service",
        "referrals-worker@.service",
        "referrals-tasks@.service",
        "referrals-web@.service",
        "referrals-backup@.service",
        "referrals-backup@.timer",
    }
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        text = text.replace("/opt/referrals/.venv/bin", str(Path(sys.executable).parent))
        text = text.replace("/opt/referrals", str(ROOT))
        text = re.sub(r"/etc/referrals/[^ \n]+\.env", str(env), text)
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    for unit in units:
        name = unit.name.replace("@.", "@khanh-hoa.")
        done = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True
        )
        noise = [line for line in done.stderr.splitlines() if "referrals" in line]
        assert done.returncode == 0 and not noise, (name, done.stderr)
    worker = (ROOT / "deploy" / "systemd" / "referrals-worker@.service").read_text()
    config = (ROOT / "deploy" / "prefect.yaml").read_text()
    assert (
        "--pool referrals-%i" in worker and 'name: "referrals-{{ $REFERRALS_PROVINCE }}"' in config
    )
