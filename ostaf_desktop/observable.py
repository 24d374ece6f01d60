"""View-model base: observable properties that announce every change on one Qt signal.

    class TuningViewModel(ViewModel):
        steps = Observable(300)

Setting `vm.steps = 400` emits `vm.changed("steps", 400)`; `binding.bind` connects widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from PySide6.QtCore import QObject, Signal

T = TypeVar("T")
_SIMPLE = (bool, int, float, str, bytes, tuple, frozenset, type(None))


class ViewModel(QObject):
    """Holds UI state as observable properties; widgets bind to it, actions are methods."""

    changed = Signal(str, object)


class Observable(Generic[T]):
    """A property of a ViewModel that emits `changed(name, value)` when it gets a new value."""

    def __init__(self, default: T, *, factory: Callable[[], T] | None = None) -> None:
        self._default = default
        self._factory = factory
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self._slot = f"_observable_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Observable[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self._slot]
        except KeyError:
            value = self._factory() if self._factory is not None else self._default
            obj.__dict__[self._slot] = value
            return value

    def __set__(self, obj: ViewModel, value: T) -> None:
        old = self.__get__(obj)
        if old is value or (
            isinstance(value, _SIMPLE) and type(old) is type(value) and old == value
        ):
            return
        obj.__dict__[self._slot] = value
        obj.changed.emit(self.name, value)


def observable_names(vm: ViewModel) -> list[str]:
    """The names of a view-model's observable properties (for tests and debugging)."""
    return [
        name
        for klass in type(vm).__mro__
        for name, attr in vars(klass).items()
        if isinstance(attr, Observable)
    ]
