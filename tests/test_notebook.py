"""The result notebook runs headless against a tiny sweep, and is committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT
from .tiny_runs import tiny_sweep

NOTEBOOK = ROOT / "notebooks" / "inspect_results.ipynb"


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].source.startswith("RUN_DIR = ")
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow  # a Jupyter kernel: a new process, with its own imports
def test_the_notebook_shows_a_sweep_without_errors(
    archive: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tiny_sweep(archive, tmp_path_factory)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: tiny tensors, busy CPU
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    first.source = f"RUN_DIR = {str(sweep)!r}"
    # python3 is the kernel of the running interpreter (jupyter_client swaps in sys.executable)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    tables = [out for out in outputs if "text/html" in out.get("data", {})]
    assert len(images) == 10  # groups, people, curves, 2 confusions, age, mistakes, 2 maps, suspect
    assert len(tables) >= 6  # ledger, diff, groups, scores, taxonomy, per class (+ suspects)
    ledger_html = tables[0]["data"]["text/html"]
    assert all(name in ledger_html for name in ("head=single", "model=test_vit", "incomplete"))
    groups_html = tables[2]["data"]["text/html"]
    assert all(name in groups_html for name in ("val_f1_ci_low", "failed", "test_vit"))
