"""The Data Center and the dataset pages: ``router`` holds all their routes.

``data_center`` lists every dataset; ``dataset`` shows one (settings, schema, preview, History,
exports); ``actions`` are what editors do to it (Run Now, Resume, Delete).
"""

from __future__ import annotations

from fastapi import APIRouter

from leadferry.web.pages import actions, data_center, dataset

router = APIRouter(include_in_schema=False)
router.include_router(data_center.router)
router.include_router(dataset.router)
router.include_router(actions.router)
