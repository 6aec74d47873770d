"""A progress bar on stderr for long imports (silent when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

STAGES = {"checked": "checking rows", "clients": "clients and consents", "launched": "launching"}


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("import", total=len(STAGES))

        def update(stage: str, done: int, total: int) -> None:
            bar.update(
                task, advance=1, description=f"{STAGES.get(stage, stage)} ({done}/{total} rows)"
            )

        yield update
