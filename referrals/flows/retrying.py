"""When a flow's task is worth retrying: a lost or locked database, never a refusal."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError


def transient(task: object, task_run: object, state: object) -> bool:
    """Retry an OperationalError only: a refusal or a bug would fail the same way again."""
    try:
        state.result()  # type: ignore[attr-defined]
    except OperationalError:
        return True
    except Exception:
        return False
    return False
