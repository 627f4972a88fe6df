"""Reading molecule tables (CSV/TSV, optionally gzipped) with labels.

Handles the quirks of real files: CRLF line ends, blank lines between rows (MoleculeNet HIV),
quoted SMILES, ``.gz`` compression, any SMILES column name (BACE uses ``mol``). Empty cells and
``NaN`` in a target column mean "missing label" (kept as NaN); any other non-numeric label is an
error naming the row and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the functions that use it: streaming one column of a plain or gzipped file
# (what ``molgraph featurize`` does) reads it with the csv module, without pandas' import time.

__all__ = ["MoleculeTable", "iter_molecule_inputs", "iter_rows_with_targets", "iter_smi", "iter_smiles_column",
           "read_molecule_table"]


@dataclass
class MoleculeTable:
    """A molecule file's content.

    Attributes:
        smiles: one string per data row (``""`` where the cell was empty).
        targets: ``(num_rows, num_targets)`` float64, NaN = missing label.
        target_columns: names of the target columns, in column order of ``targets``.
        frame: the whole table as read (all columns as strings), for writing outputs that keep
            the user's columns.
    """

    smiles: list[str]
    targets: np.ndarray
    target_columns: list[str]
    frame: pd.DataFrame


def _separator(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return "\t" if name.endswith((".tsv", ".tab")) else ","


def _read_options(path: Path) -> dict:
    # Everything as text: SMILES like "NA" or "nan"-looking names must not become floats, and
    # labels are converted by the caller with errors that name the cell.
    return dict(
        sep=_separator(path), dtype=str, keep_default_na=False, skip_blank_lines=True,
        compression="infer", encoding="utf-8", encoding_errors="replace",
    )


def iter_smiles_column(path: str | Path, smiles_column: str, chunk_rows: int = 100_000) -> Iterator[str]:
    """Stream one column of a CSV/TSV (``.gz`` allowed) without loading the file.

    Yields the stripped cell of every data row (blank lines skipped), ``""`` for empty cells, so
    positions match :func:`read_molecule_table`'s rows. Plain and ``.gz`` files are read row by row
    with the csv module, following pandas' reading of them (see :func:`_iter_csv_column`); other
    compressions go through pandas, ``chunk_rows`` rows at a time.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"molecule file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".gz" or suffix not in _PANDAS_COMPRESSIONS:
        yield from _iter_csv_column(path, smiles_column)
        return
    yield from _iter_pandas_column(path, smiles_column, chunk_rows)


# the extensions pandas' compression="infer" decompresses (other than .gz, which gzip reads here)
_PANDAS_COMPRESSIONS = (".bz2", ".zip", ".xz", ".zst", ".tar", ".tgz")


def _missing_column(path: Path, smiles_column: str) -> KeyError:
    import pandas as pd

    header = [str(c).strip() for c in pd.read_csv(path, nrows=0, **_read_options(path)).columns]
    return KeyError(f"{path}: column(s) {[smiles_column]} not found; columns present: {header}")


def _iter_pandas_column(path: Path, smiles_column: str, chunk_rows: int) -> Iterator[str]:
    import pandas as pd

    header = [str(c).strip() for c in pd.read_csv(path, nrows=0, **_read_options(path)).columns]
    if smiles_column not in header:
        raise KeyError(f"{path}: column(s) {[smiles_column]} not found; columns present: {header}")
    reader = pd.read_csv(
        path, usecols=lambda c: str(c).strip() == smiles_column, chunksize=chunk_rows, **_read_options(path)
    )
    with reader:
        for chunk in reader:
            for cell in chunk.iloc[:, 0].tolist():
                yield cell.strip()


def _iter_csv_column(path: Path, smiles_column: str) -> Iterator[str]:
    """One column of a plain or gzipped CSV/TSV with the csv module, as pandas reads it with
    :func:`_read_options`: a UTF-8 BOM dropped, undecodable bytes replaced, quoted fields (with
    commas, doubled quotes or line breaks) as one cell, the first non-blank line as the header.

    A blank line (empty, or only spaces and tabs other than the separator, outside quotes) is no
    row; a row shorter than the header has ``""`` in its missing cells and extra cells are ignored.
    The header, the column check and the first rows are read before the first value is yielded.
    A file without a header, or a column that is not there, gets pandas' own error.
    """
    import csv
    import gzip

    sep = _separator(path)
    blank = " \t".replace(sep, "") + "\r\n"  # pandas' blank line: only these (the separator excluded)
    raw: list[str | None] = [""]  # the last line the csv reader took; None once it asked past the end

    def lines(fh: Iterator[str]) -> Iterator[str]:
        for line in fh:
            raw[0] = line
            yield line
        raw[0] = None

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(lines(fh), delimiter=sep)
        last = reader.line_num
        col = None
        try:
            for row in reader:
                # a row read from one line of spaces/tabs is a blank line; `"  "` is a row
                if raw[0] is None:  # csv returns what it has at the end; pandas refuses
                    raise ValueError(f"{path}: the file ends inside a quoted field (from line {last + 1})")
                single = reader.line_num - last == 1
                last = reader.line_num
                if not row or (single and len(row) == 1 and not raw[0].strip(blank)):
                    continue
                if col is None:  # the header
                    names = [c.strip() for c in row]
                    if smiles_column not in names:
                        raise _missing_column(path, smiles_column)
                    col = names.index(smiles_column)
                    continue
                yield row[col].strip() if col < len(row) else ""
        except csv.Error as exc:
            raise ValueError(f"{path}: line {reader.line_num}: {exc}") from None
    if col is None:  # no header: an empty file (pandas says so)
        raise _missing_column(path, smiles_column)


def read_molecule_table(
    path: str | Path,
    smiles_column: str,
    target_columns: Sequence[str] | None = None,
) -> MoleculeTable:
    """Read a CSV/TSV (``.gz`` allowed) with a SMILES column and optional numeric targets.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: a named column is absent (the message lists the columns present).
        ValueError: a target cell is neither a number nor empty, naming row (0-based data row)
            and column.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"molecule file not found: {path}")
    frame = pd.read_csv(path, **_read_options(path))
    # a file whose header repeats a name (QM8's duplicated columns) gets pandas' ".1" suffixes;
    # strip stray whitespace/CR that some files carry in header cells
    frame.columns = [str(c).strip() for c in frame.columns]
    target_columns = list(target_columns or [])
    missing = [c for c in [smiles_column, *target_columns] if c not in frame.columns]
    if missing:
        raise KeyError(f"{path}: column(s) {missing} not found; columns present: {list(frame.columns)}")
    smiles = [s.strip() for s in frame[smiles_column].tolist()]
    targets = np.full((len(frame), len(target_columns)), np.nan, dtype=np.float64)
    for j, col in enumerate(target_columns):
        for i, cell in enumerate(frame[col].tolist()):
            cell = cell.strip()
            if cell == "" or cell.lower() in ("nan", "na", "n/a", "none", "null"):
                continue
            try:
                targets[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: row {i}, column {col!r}: label {cell!r} is not a number") from None
    return MoleculeTable(smiles, targets, target_columns, frame)


def iter_smi(path: str | Path) -> Iterator[str]:
    """The first field of every non-blank line of a ``.smi`` file (``.gz`` allowed): its SMILES."""
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                yield line.split()[0]


def iter_molecule_inputs(path: str | Path, smiles_column: str | None, *, keep_hs: bool = False) -> Iterator:
    """Every record of a molecule file, streamed, one per data row: RDKit molecules from an SDF
    (``keep_hs`` keeps its explicit hydrogens), SMILES strings from a ``.smi`` file or from the
    ``smiles_column`` of a CSV/TSV (``.gz`` allowed for all three).

    A CSV's header is checked on the first step (a missing column raises :class:`KeyError`
    before any row is featurized).
    """
    from molgraph.chem import ParseOptions, read_sdf

    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".sdf"):
        return (mol for _, mol, _ in read_sdf(path, ParseOptions(keep_hs=keep_hs)))
    if name.endswith(".smi"):
        return iter_smi(path)
    if smiles_column is None:
        raise ValueError(f"{path}: a CSV/TSV input needs the name of its SMILES column")
    return iter_smiles_column(path, smiles_column)


def iter_rows_with_targets(path: str | Path, smiles_column: str, target_columns: Sequence[str],
                           chunk_rows: int = 50_000) -> Iterator[tuple[str, np.ndarray]]:
    """``(smiles, targets)`` per data row of a CSV/TSV, read ``chunk_rows`` rows at a time.

    Rows, cells and label rules are those of :func:`read_molecule_table`
    (the same pandas reading; empty and NaN-like cells are missing labels, NaN), but the file is
    never held whole: a 1.6M-row library costs one chunk of text at a time.

    Raises:
        KeyError: a named column is absent (the message lists the columns present).
        ValueError: a label that is neither a number nor empty, naming the row and column.
    """
    import pandas as pd

    path = Path(path)
    target_columns = list(target_columns)
    options = _read_options(path)
    header = [str(c).strip() for c in pd.read_csv(path, nrows=0, **options).columns]
    missing = [c for c in [smiles_column, *target_columns] if c not in header]
    if missing:
        raise KeyError(f"{path}: column(s) {missing} not found; columns present: {header}")
    wanted = {smiles_column, *target_columns}
    missing_words = ("", "nan", "na", "n/a", "none", "null")
    row = 0
    reader = pd.read_csv(path, usecols=lambda c: str(c).strip() in wanted, chunksize=chunk_rows, **options)
    with reader:
        for frame in reader:
            frame.columns = [str(c).strip() for c in frame.columns]
            targets = np.full((len(frame), len(target_columns)), np.nan, dtype=np.float64)
            for j, col in enumerate(target_columns):
                for i, cell in enumerate(frame[col].tolist()):
                    cell = cell.strip()
                    if cell.lower() in missing_words:
                        continue
                    try:
                        targets[i, j] = float(cell)
                    except ValueError:
                        raise ValueError(f"{path}: row {row + i}, column {col!r}: label {cell!r} is not a number") \
                            from None
            for i, smiles in enumerate(frame[smiles_column].tolist()):
                yield smiles.strip(), targets[i]
            row += len(frame)
