"""docs/: every registered method is documented in its section, and every docs link in the code resolves.

A new task, format switch, tokenizer, position rule, encoding (or encoding option value) fails
here until docs/ describes it. Names must appear in backticks (`name`) inside the section of
their family. No model is built: only the registries are imported.
"""

import pathlib
import re

import pytest

from arithlab.models import config as model_config
from arithlab.models.encodings import ENCODINGS, rope, rope_pp, rope_scaling
from data_gen import formats, pipeline, positions, tasks, tokenizers

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = ("README.md", "arithlab", "data_gen", "experiments", "tests", "benchmarks", "colab", "docs")
THIS = pathlib.Path(__file__).resolve()
LINK = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")  # from anywhere: docs/methods.md#tasks
RELATIVE_LINK = re.compile(r"\]\(([\w-]+\.md)?#([\w-]+)\)")  # inside docs/: (methods.md#tasks), (#tasks)


def sections(path: pathlib.Path, level: int) -> dict[str, str]:
  """{heading text: the text up to the next heading of the same or a higher level}."""
  out, heading, lines = {}, None, []
  for line in path.read_text().splitlines():
    match = re.match(r"(#+) (.*)", line)
    if match and len(match.group(1)) <= level:
      if heading is not None:
        out[heading] = "\n".join(lines)
      heading, lines = (match.group(2) if len(match.group(1)) == level else None), []
    else:
      lines.append(line)
  if heading is not None:
    out[heading] = "\n".join(lines)
  return out


def slug(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
  seen: dict[str, int] = {}
  out = set()
  for line in path.read_text().splitlines():
    match = re.match(r"#+ (.*)", line)
    if match:
      base = slug(match.group(1))
      out.add(base if base not in seen else f"{base}-{seen[base]}")
      seen[base] = seen.get(base, 0) + 1
  return out


def hint_tasks() -> list[str]:
  return [name for name in tasks.TASKS.names() if name.endswith("_hint")]


FAMILIES = {  # family: (file, "## " section, names that must appear in it as `name`)
    "task": ("methods.md", "Tasks", tasks.TASKS.names()),
    "format switch": ("methods.md", "Formats", list(formats.SWITCHES)),
    "tokenizer": ("methods.md", "Tokenizers", tokenizers.TOKENIZERS.names()),
    "task hint": ("methods.md", "Task hints", hint_tasks()),
    "position rule": ("methods.md", "Position-ID rules", positions.POSITIONS.names()),
    "loss": ("methods.md", "The data pipeline", list(pipeline.LOSSES)),
    "encoding": ("encodings.md", None, ENCODINGS.names()),
    "randomized encoding": ("encodings.md", "Randomized variants",
                            [f"randomized:{n}" for n in ENCODINGS.names() if ENCODINGS.get(n).randomizable]),
    "rope option value": ("encodings.md", "RoPE",
                          list(rope.PARTIALS) + list(rope.LAYER_KINDS)
                          + [form.split(":")[0].strip() for form in rope_scaling.SPEC_FORMS.split("|")]),
    "rope_pp mode": ("encodings.md", "RoPE++ (imaginary heads)", list(rope_pp.MODES)),
    "temperature": ("encodings.md", "Length-dependent temperature", list(model_config.TEMPERATURES)),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_registered_name_is_documented_in_its_section(family):
  file, section, names = FAMILIES[family]
  path = DOCS / file
  text = path.read_text() if section is None else sections(path, 2).get(section)
  assert text is not None, f"docs/{file} has no section '## {section}'"
  missing = [name for name in names if not re.search(rf"`{re.escape(name)}[`:<]", text)]
  assert not missing, f"{family} names without documentation in docs/{file} ({section or 'anywhere'}): {missing}"


def source_files():
  for entry in SOURCES:
    path = ROOT / entry
    if path.is_file():
      yield path
    elif path.is_dir():
      yield from (p for p in path.rglob("*") if p.suffix in (".py", ".md") and ".ipynb_checkpoints" not in p.parts)


def links():
  """(file containing the link, docs file name, anchor) of every docs link."""
  for path in source_files():
    if path.resolve() == THIS:
      continue
    text = path.read_text()
    yield from ((path, file, anchor) for file, anchor in LINK.findall(text))
    if path.parent == DOCS:
      yield from ((path, file or path.name, anchor) for file, anchor in RELATIVE_LINK.findall(text))


def test_docs_links_in_the_code_resolve():
  found = list(links())
  assert any(path.parent != DOCS for path, _, _ in found), "the code should point at docs/<file>.md#<section>"
  broken = [f"{path.relative_to(ROOT)}: docs/{file}#{anchor}" for path, file, anchor in found
            if not (DOCS / file).exists() or anchor not in anchors(DOCS / file)]
  assert not broken, f"links to missing docs sections: {broken}"


def test_no_reference_to_documents_outside_the_repository():
  outside = re.compile("papers" + r"\.md|project brief|notes/")
  hits = [f"{path.relative_to(ROOT)}:{i}" for path in source_files() if path.resolve() != THIS
          for i, line in enumerate(path.read_text().splitlines(), 1) if outside.search(line)]
  assert not hits, f"references to documents that are not in the repository: {hits}"
