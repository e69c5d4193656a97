"""The quickstart notebook executes end to end (outputs are stripped in git) and shows its figures as images."""

import base64
from pathlib import Path

import pytest

NB = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_notebook_outputs_are_stripped():
    import nbformat

    nb = nbformat.read(NB, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def _figure_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "plots.plot_" in c.source]


def test_quickstart_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NB, as_version=4)
    assert len(_figure_cells(nb)) >= 2  # the fit figure and the frontier comparison
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB.parent.parent)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "my fit (approach3)" in text and "GPU-hours" in text and "qlora" in text
    # every figure cell shows its figure as an image (not just "<Figure size ...>"), exactly once
    for cell in _figure_cells(nb):
        pngs = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(pngs) == 1, (cell.source, cell.outputs)
        raw = base64.b64decode(pngs[0])
        assert raw.startswith(PNG_MAGIC) and len(raw) > 20_000, len(raw)
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
