"""What `mmsearch bench` shows while it runs: a section line per collection size, and a progress bar
per long step (a plain line with the step's time instead when the output is not a terminal)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.live,
        )

    def __enter__(self) -> Reporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def section(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold]{text}[/bold]", highlight=False)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"  {text}", highlight=False)

    def bar(self, label: str, total: int) -> Callable[[int], None]:
        """A callback to advance by n; the step's line is printed when it reaches `total`."""
        task = self.progress.add_task(label, total=total)
        done = 0
        t0 = time.perf_counter()

        def advance(n: int) -> None:
            nonlocal done
            done += n
            self.progress.advance(task, n)
            if done >= total:
                self.progress.remove_task(task)
                self.note(f"{label}: {time.perf_counter() - t0:,.1f} s")

        return advance
