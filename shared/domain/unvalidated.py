"""Pydantic model instances made from values already known to be valid, without validating them again.

The matcher makes findings by the thousand, and EPSS and CVSS scores by the hundred, from values whose types
it has checked or that came out of validated models. Validating them again gives an equal model at about twice
the cost, which was most of a warm match's time. These functions set the four attributes a pydantic model
instance holds (its field dict, the set of set fields, extras and private attributes) directly, through the
descriptors ``object.__setattr__`` would find on BaseModel. Callers are responsible for the values: exactly
each field's type, in the model's field order; anything else goes through the model's own validation.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

_M = TypeVar("_M", bound=BaseModel)


def _slot_setter(name: str) -> Any:
    """The setter of a pydantic model's attribute ``name``, as object.__setattr__ finds it (on BaseModel).
    Calling it directly skips that lookup."""
    for cls in BaseModel.__mro__:
        descriptor = cls.__dict__.get(name)
        if descriptor is not None:
            return descriptor.__set__
    raise AttributeError(name)


set_dict = _slot_setter("__dict__")
set_fields_set = _slot_setter("__pydantic_fields_set__")
set_extra = _slot_setter("__pydantic_extra__")
set_private = _slot_setter("__pydantic_private__")


def assemble(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``cls`` holding ``fields`` (its own dict: not copied) with ``fields_set`` as its set fields."""
    model = object.__new__(cls)
    set_dict(model, fields)
    set_fields_set(model, fields_set)
    set_extra(model, None)
    set_private(model, None)
    return model


def unvalidated(cls: type[_M], values: dict[str, Any]) -> _M:
    """A model with these field values, every one of them set, made without validating them (see the module)."""
    return assemble(cls, values, set(values))
