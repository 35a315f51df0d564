"""colab/: every notebook runs top to bottom in small mode, labels every plot, has no outputs
checked in, and matches its jupytext-paired .py.

Each notebook executes in its own kernel (nbclient) with ARITHLAB_NOTEBOOK_SMALL=1, which the
notebooks read to shrink training to seconds, and ARITHLAB_RUNS pointing at a temporary
directory for the runs they write. A failing cell fails the test with its traceback. The
notebooks are parametrized, so `pytest -n 2` spreads them over the workers.
"""

import pathlib

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks
from nbclient import NotebookClient

COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = ("01_data_tour", "02_train_and_evaluate", "03_positional_encodings", "04_reproduce_a_table")
CELL_TIMEOUT_S = 300

# Run before the notebook: every figure the notebook displays (plt.show() with the inline
# backend, or IPython's display(fig)) passes through the PNG formatter; record it there.
BEFORE = """
import matplotlib.figure
from IPython import get_ipython
get_ipython().run_line_magic("matplotlib", "inline")  # registers the inline PNG formatter now
DISPLAYED_FIGURES = []
_png = get_ipython().display_formatter.formatters["image/png"]
_render = _png.lookup_by_type(matplotlib.figure.Figure)
_ = _png.for_type(matplotlib.figure.Figure,
                  lambda fig, *a, **k: (DISPLAYED_FIGURES.append(fig), _render(fig, *a, **k))[1])
"""

# Run after the notebook: every axes of a displayed figure that shows data has a title (its
# own or the figure's) and labelled axes; colorbars and axes turned off are exempt.
AFTER = """
figures = {id(f): f for f in DISPLAYED_FIGURES}
unlabelled = []
for fig in figures.values():
  suptitle = fig._suptitle.get_text() if fig._suptitle else ""
  for ax in fig.axes:
    if not ax.axison or hasattr(ax, "_colorbar"):
      continue
    if not (ax.get_title() or suptitle) or not ax.get_xlabel() or not ax.get_ylabel():
      unlabelled.append((ax.get_title() or suptitle, ax.get_xlabel(), ax.get_ylabel()))
assert figures, "the notebook displayed no figure"
assert not unlabelled, f"axes without a title or axis labels (title, xlabel, ylabel): {unlabelled}"
"""


def _read(name: str, ext: str) -> nbformat.NotebookNode:
  return jupytext.read(COLAB / f"{name}{ext}")


def test_every_notebook_is_listed():
  assert sorted(p.stem for p in COLAB.glob("*.ipynb")) == sorted(NOTEBOOKS)
  assert sorted(p.stem for p in COLAB.glob("*.py")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_outputs_checked_in(name):
  notebook = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
  stale = [i for i, cell in enumerate(notebook.cells)
           if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
  assert not stale, f"{name}.ipynb has outputs in cells {stale}: run `jupytext --sync colab/{name}.py`"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_matches_py(name):
  compare_notebooks(_read(name, ".ipynb"), _read(name, ".py"), fmt="py:percent")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_top_to_bottom(name, monkeypatch, tmp_path):
  monkeypatch.setenv("ARITHLAB_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("ARITHLAB_RUNS", str(tmp_path))
  notebook = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
  notebook.cells = ([nbformat.v4.new_code_cell(BEFORE)] + notebook.cells + [nbformat.v4.new_code_cell(AFTER)])
  NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                 resources={"metadata": {"path": str(COLAB)}}).execute()
