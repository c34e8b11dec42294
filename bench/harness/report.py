"""Figures and tables: a plain report for the terminal, then the same as Markdown for
bench/RESULTS.md."""

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 1) -> str:
    """Thousands separated, '—' for a figure that does not exist."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def machine(postgres: str, setup: str) -> str:
    """The machine, PostgreSQL (`postgres`, see PostgresFacts) and what ran on it (`setup`)."""
    return (
        f"{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, "
        f"PostgreSQL {postgres}, {setup}"
    )


@dataclass
class Table:
    caption: str | None  # None: it follows the table before it, under the same caption
    header: list[str]
    rows: list[list[str]]
    left: int = 1  # leading columns aligned left (names); the rest are figures


def plain_table(table: Table) -> str:
    header, rows = table.header, table.rows
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < table.left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(table: Table) -> str:
    align = ["---"] * table.left + ["---:"] * (len(table.header) - table.left)
    lines = ["| " + " | ".join(table.header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table.rows]
    return "\n".join(lines)


@dataclass
class Report:
    title: str  # "Ledger benchmark": the Markdown section's heading
    command_line: str
    machine: str
    tables: list[Table]
    summary: list[str]  # plain lines after the plain tables: errors, checks
    notes: list[str]  # Markdown bullets after the Markdown tables
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def print(self) -> None:
        print()
        print(f"billgraph {self.title[0].lower()}{self.title[1:]}, {self.date}")
        print(f"command: {self.command_line}")
        print(self.machine)
        print()
        for table in self.tables:
            if table.caption:
                print(table.caption)
            print(plain_table(table))
            print()
        for line in self.summary:
            print(line)

        print()
        print("----- Markdown (for bench/RESULTS.md) -----")
        print()
        print(f"## {self.title}, {self.date}")
        print()
        print(f"Command: `{self.command_line}`  ")
        print(f"Machine: {self.machine}.")
        print()
        for table in self.tables:
            if table.caption:
                print(table.caption)
                print()
            print(markdown_table(table))
            print()
        for note in self.notes:
            print(f"- {note}")
        print()
