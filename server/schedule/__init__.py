"""Periodic work on one schedule for every hub process: the scheduled notices (refill due, not
collected, prescription received: :mod:`.jobs`), run every ``TELEPHARM_SCHEDULE_INTERVAL``
seconds, and the payment plans' instalments (:class:`server.payments.plans.InstalmentJob`,
every 5 minutes when card payments are configured), each by whichever process takes the job's
lease first (:mod:`.lease`).

Two ways to run it, both through :class:`.runner.Schedule`: each hub process's own loop (``setup``:
the embedded mode, ``make run`` and the tests, and any hub beside a beat), and the Celery task
:data:`TASK` that ``telepharm beat`` schedules for the workers. The lease makes them one
schedule: a run in one process keeps the others out until the next run is due.
"""

from __future__ import annotations

#: the Celery task the beat schedules (run by a worker)
TASK = "telepharm.scheduled_notices"
#: the leases' names: this, a dot and the kind
JOB = "scheduled_notices"
