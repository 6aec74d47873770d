"""deploy/prefect.yaml declares the flows `referrals serve` runs, on the same schedules."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import yaml

from referrals.cli.main import serve
from referrals.config import load_province

ROOT = Path(__file__).parents[1]


def test_every_deployment_points_at_a_real_flow_with_the_served_schedule() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"deliver", "sweep", "digest", "launch", "report"}
    flows = {}
    for name, d in deployments.items():
        path, function = d["entrypoint"].split(":")
        spec = importlib.util.spec_from_file_location(f"entry_{name}", ROOT / path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        flows[name] = getattr(module, function).name
        assert d["work_pool"]["name"] == "referrals"
    assert flows == {
        "deliver": "deliver-notifications",
        "sweep": "sweep-deadlines",
        "launch": "launch-referral",
        "digest": "manager-digest",
        "report": "period-report",
    }
    defaults = {p.name: p.default for p in inspect.signature(serve).parameters.values()}
    assert deployments["deliver"]["schedules"] == [{"interval": defaults["deliver_every"]}]
    assert deployments["sweep"]["schedules"] == [{"interval": defaults["sweep_every"]}]
    province = load_province(ROOT / "referrals" / "config" / "khanh-hoa").province
    at = province.digest.at
    assert deployments["digest"]["schedules"] == [
        {"cron": f"{at.minute} {at.hour} * * *", "timezone": "Asia/Ho_Chi_Minh"}
    ]
