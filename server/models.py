"""Every feature's tables, on the one metadata they share (``server.db.models.Base``).

Features keep their models beside their code; this is the one list of them, for whatever must
know the whole schema: the migrations (autogenerate compares the database with it) and the
tests that empty every table. A feature that adds a models module adds it here, as it adds its
``setup`` to ``app.py``. Nothing in a feature imports this module, so it imports them all
without an import circle.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

from .adherence import models as adherence
from .admin import models as admin
from .audit import models as audit
from .auth import models as auth
from .consults import models as consults
from .db import models as db
from .dispensing import models as dispensing
from .drugs import models as drugs
from .inventory import models as inventory
from .notifications import models as notifications
from .notifications import template_models as notification_templates
from .outbox import models as outbox
from .patient_page import models as patient_page
from .patients import models as patients
from .payments import models as payments
from .prescriptions import archive as epcs_archive
from .prescriptions import models as prescriptions
from .schedule import models as schedule

#: the modules that declare tables, imported for them
MODEL_MODULES: tuple[ModuleType, ...] = (
    admin,
    adherence,
    audit,
    auth,
    consults,
    dispensing,
    drugs,
    inventory,
    notifications,
    notification_templates,
    outbox,
    patients,
    payments,
    patient_page,
    prescriptions,
    epcs_archive,
    schedule,
)
#: every table of the hub
METADATA: MetaData = db.Base.metadata
