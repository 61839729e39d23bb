"""The wiring of the match-review queue and profile merges (:mod:`.merge_http`). Apart from
``server.patients``' own setup because merges move consults' and notifications' rows, whose
tables refer to the profiles: importing it from the package would make a cycle."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from . import merge_http


def setup(app: web.Application, settings: Settings) -> None:
    router = app.router
    router.add_get("/api/v1/match-review", merge_http.list_queue)
    router.add_post("/api/v1/match-review/{id}/link", merge_http.link)
    router.add_post("/api/v1/match-review/{id}/create", merge_http.create)
    router.add_post("/api/v1/patients/{id}/merge", merge_http.merge)
    router.add_get("/api/v1/patients/{id}/merges", merge_http.list_merges)
    router.add_get("/api/v1/patient-merges/{id}", merge_http.get_merge)
    router.add_post("/api/v1/patient-merges/{id}/unmerge", merge_http.unmerge)
