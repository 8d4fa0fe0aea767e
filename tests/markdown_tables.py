"""Reading the markdown tables the benchmarks print."""


def table_rows(text: str) -> list[list[str]]:
    """The stripped cells of every table row in `text`, header rows kept, `---` rules left out."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
    return rows


def half_last_digit(cell: str) -> float:
    """Half a unit in the printed cell's last place: how far rounding may have moved it."""
    return 0.5 * 10.0 ** -len(cell.partition(".")[2])
