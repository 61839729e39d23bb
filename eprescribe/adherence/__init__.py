"""Adherence as pure domain code: proportion of days covered (``pdc.py``), when a refill or a
renewal is due (``refills.py``), medication synchronisation (``sync.py``) and the outreach list
of patients below the threshold (``outreach.py``)."""
