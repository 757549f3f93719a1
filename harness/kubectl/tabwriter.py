"""Go's text/tabwriter, which lays out every kubectl table and `describe`.

Cells are tab-terminated; the text after a line's last tab is not part of a column. A column is
aligned over a block of consecutive lines that all have a cell in it, so a line without tabs
ends every block (that is how `describe` aligns its sections independently).
"""

from __future__ import annotations


class TabWriter:
    """Accumulates text and lays it out on `flush()`.

    `remember_widths` (kubectl's fork of tabwriter) keeps column widths across flushes, so rows
    printed later by `get --watch` line up with the header printed first.
    """

    def __init__(self, minwidth: int = 0, padding: int = 2, remember_widths: bool = False):
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self.max_widths: list[int] = []
        self.buffer = ""

    def write(self, text: str) -> None:
        self.buffer += text

    def flush(self) -> str:
        text, self.buffer = self.buffer, ""
        lines = text.split("\n")
        trailing = lines.pop() if lines else ""
        cells = [line.split("\t") for line in lines]
        out: list[str] = []
        self._format(cells, 0, len(cells), [], out)
        result = "".join(out)
        return result + trailing

    def _format(self, lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write_lines(lines, line0, this, widths, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember_widths:
                self.max_widths.extend(widths[len(self.max_widths):column])
                if column < len(self.max_widths):
                    width = max(width, self.max_widths[column])
                    self.max_widths[column] = width
                else:
                    self.max_widths.append(width)
            self._format(lines, line0, this, widths + [width], out)
            line0 = this
        self._write_lines(lines, line0, line1, widths, out)

    @staticmethod
    def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
        for line in lines[line0:line1]:
            parts = []
            for j, cell in enumerate(line):
                if j < len(widths):
                    parts.append(cell + " " * (widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts) + "\n")


def table_writer() -> TabWriter:
    """printers.GetNewTabWriter: kubectl's tables (minimum width 6, three spaces between columns)."""
    return TabWriter(minwidth=6, padding=3, remember_widths=True)


def describe_writer() -> TabWriter:
    """The writer of `kubectl describe`."""
    return TabWriter(minwidth=0, padding=2)
