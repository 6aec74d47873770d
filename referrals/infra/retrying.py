"""When a Prefect task is worth retrying: a lost or locked database, never a refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from prefect.states import State


def transient(task: object, task_run: object, state: State) -> bool:
    """Retry an OperationalError only: a refusal or a bug would fail the same way again."""
    try:
        state.result()
    except OperationalError:
        return True
    except Exception:
        return False
    return False
