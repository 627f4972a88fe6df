"""Exceptions raised by the RDKit layer."""

from __future__ import annotations


class MoleculeError(ValueError):
    """A molecule could not be read or processed.

    Attributes:
        index: position of the item in its input (row number for files, position for lists);
            ``None`` when the item was given alone.
        input: the text that was given (SMILES, mol block, ...), possibly truncated for display.
        reason: why it failed, in RDKit's own words where RDKit gave any.
    """

    def __init__(self, reason: str, input: str | None = None, index: int | None = None):
        self.reason = reason
        self.input = input
        self.index = index
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"item {self.index}" if self.index is not None else "molecule"
        shown = self.input if self.input is None or len(self.input) <= 120 else self.input[:117] + "..."
        return f"{where} ({shown!r}): {self.reason}" if shown is not None else f"{where}: {self.reason}"

    def __reduce__(self):  # keep attributes when sent between processes
        return (type(self), (self.reason, self.input, self.index))
