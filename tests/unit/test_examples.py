"""The custom-processor example does what its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from framecast import LLMText, Sentence, TextIn
from framecast.testing import run_processors

EXAMPLES = Path(__file__).parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_custom_processors_redact_and_count() -> None:
    example = load("custom_processor")
    counter = example.WordCounter()
    out = await run_processors(
        [counter, example.Redactor()],
        [
            TextIn(text="pin?", turn=1),
            LLMText(text="It is 42 now.", turn=1),
            Sentence(text="It is 42 now.", turn=1),
        ],
    )
    assert [f.text for f in out.of(Sentence)] == ["It is ## now."]
    assert [f.text for f in out.of(LLMText)] == ["It is 42 now."]  # only speech is redacted
    assert counter.words == 4


def test_every_example_imports() -> None:
    for path in sorted(EXAMPLES.glob("*.py")):
        assert hasattr(load(path.stem), "main"), path.name
