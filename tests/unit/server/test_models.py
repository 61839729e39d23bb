"""``server.models`` lists every module that declares tables: a feature's models module left
out of it would be missing from the migrations' comparison and from the tests' clean-up."""

from __future__ import annotations

import importlib
import pkgutil

import server
from server.db.models import Base
from server.models import METADATA, MODEL_MODULES

#: modules that run something when imported: the command line, the migrations' environment
_RUN_ON_IMPORT = ("server.__main__", "server.db.migrations.")


def test_every_module_with_tables_is_listed() -> None:
    for module in pkgutil.walk_packages(server.__path__, "server."):
        if not module.name.startswith(_RUN_ON_IMPORT):
            importlib.import_module(module.name)
    declaring = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    assert declaring == {module.__name__ for module in MODEL_MODULES}


def test_every_foreign_key_finds_its_table() -> None:
    for table in METADATA.sorted_tables:
        for key in table.foreign_keys:
            assert key.column.table.name in METADATA.tables
