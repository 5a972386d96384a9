"""Model instances on the engine's hot path: read from hand-written SQL, or made anew.

Every task operation starts with the same read: the task, its process (locked) and its
assignee. Compiling that through the ORM costs more than running it, so the statement is
written once per model shape and its rows are turned into instances here, with the same
conversions the ORM applies (JSON, dates). A step then makes a dozen instances (the next
task, its grants, the events), and `maker` makes them as the model's constructor would.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute, ForwardManyToOneDescriptor
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

from . import tricks


class Columns:
    """The concrete columns of a model under a table alias, and how to read them back."""

    def __init__(self, model: type[Model], alias: str, only: Sequence[str] = ()) -> None:
        """`only`: these attribute names (and the primary key), the others deferred."""
        self.model = model
        self.alias = alias
        self.fields = [field for field in model._meta.concrete_fields
                       if not only or field.primary_key or field.attname in only]
        self.names = [field.attname for field in self.fields]
        self._pk = self.fields.index(model._meta.pk)
        self._converters: dict[str, list] = {}

    def sql(self, quote) -> str:
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    def read(self, values: Sequence[Any], connection) -> Model | None:
        """The instance of `values` (this model's slice of a row, read on `connection`, a
        database wrapper); None for a missing LEFT JOIN row."""
        if values[self._pk] is None:
            return None
        converted = list(values)
        for i, col, converters in self._converters_for(connection):
            for converter in converters:
                converted[i] = converter(converted[i], col, connection)
        return maker(self.model).loaded(self.names, converted, connection.alias)

    def _converters_for(self, connection) -> list:
        using = connection.alias
        if using not in self._converters:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                converters = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
                if converters:
                    found.append((i, col, converters))
            self._converters[using] = found
        return self._converters[using]

    def __len__(self) -> int:
        return len(self.fields)


class Maker:
    """Instances of one model, made as its constructor (`new`) and `from_db` (`loaded`) make
    them, without their walk of every field at every call.

    Django's constructor matches each field against the keyword arguments, asks it for its
    default and sets the value through the class's descriptor, at each call: for a step's
    dozen instances that cost more than composing their statement. Here the walk is done
    once per model, the defaults that never change are kept, and each value goes into the
    instance's `__dict__`, where those descriptors put it on an instance not yet used.
    A model whose attributes are not all such plain storage, that has a constructor of its
    own, or whose construction somebody listens to (`pre_init`, `post_init`) is made by
    its constructor.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        opts = model._meta
        self.plain = _plain(model)
        self.defaults: dict[str, Any] = {}  # attname -> the default, where it never changes
        self.computed: dict[str, Any] = {}  # attname -> field, whose default is called each time
        self.keys: dict[str, str] = {"pk": opts.pk.attname}  # argument -> attname
        self.relations: set[str] = set()  # names of the fields that take a related instance
        for field in opts.concrete_fields:
            if callable(field.default) if field.has_default() else field.has_db_default():
                self.computed[field.attname] = field
            else:
                self.defaults[field.attname] = field.get_default()
            self.keys[field.attname] = field.attname
            if field.many_to_one:
                self.relations.add(field.name)
        self.accepted = frozenset([*self.keys, *self.relations])

    def new(self, **values: Any) -> Model:
        """`model(**values)`: values by attribute name, or related instances by field name."""
        if not self.plain or not values.keys() <= self.accepted or not tricks.on("rows"):
            return self.model(**values)
        obj = self.model.__new__(self.model)
        obj._state = ModelState()
        data = obj.__dict__
        data.update(self.defaults)
        related = []
        for name, value in values.items():
            if name in self.relations:
                related.append((name, value))
            else:
                data[self.keys[name]] = value
        for attname, field in self.computed.items():
            if attname not in data:
                data[attname] = field.get_default()
        for name, value in related:
            # Through the descriptor, as the constructor does: it caches the instance, and the
            # database router places both.
            setattr(obj, name, value)
        return obj

    def loaded(self, names: Sequence[str], values: Sequence[Any], using: str) -> Model:
        """`model.from_db(using, names, values)`: a row read from the database."""
        if not self.plain or not tricks.on("rows"):
            return self.model.from_db(using, names, values)
        obj = self.model.__new__(self.model)
        state = obj._state = ModelState()
        state.adding, state.db = False, using
        obj.__dict__.update(zip(names, values))
        return obj


@lru_cache(maxsize=None)
def maker(model: type[Model]) -> Maker:
    return Maker(model)


def _plain(model: type[Model]) -> bool:
    if model.__init__ is not Model.__init__ or model.from_db.__func__ is not Model.from_db.__func__:
        return False
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return False
    for field in model._meta.concrete_fields:
        if type(_class_attribute(model, field.attname)) not in (DeferredAttribute, ForeignKeyDeferredAttribute):
            return False
        if field.many_to_one and type(_class_attribute(model, field.name)) is not ForwardManyToOneDescriptor:
            return False
    return True


def _class_attribute(model: type, name: str) -> Any:
    for klass in model.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None
