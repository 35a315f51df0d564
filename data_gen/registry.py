"""One small registry type shared by every family (tasks, formats, tokenizers, ...)."""

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """A name -> entry mapping whose unknown names raise a ValueError listing the valid ones."""

  def __init__(self, family: str):
    self.family = family
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator: `@REGISTRY.register("name")` adds the decorated class or function."""

    def add(entry: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.family} {name!r} is registered twice")
      self._entries[name] = entry
      return entry

    return add

  def get(self, name: str) -> T:
    if name not in self._entries:
      raise ValueError(
          f"{self.family} {name!r} unknown; choose one of: {', '.join(sorted(self._entries))}")
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())
