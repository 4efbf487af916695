"""Dependencies stated in route signatures: settings, the job queue, the object store and the
in-process workers. Routes take these aliases and hold no SQL and no storage calls of their
own beyond the queue's and the store's methods."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pacs_common.storage import ObjectStore

from pacs_exporter.jobs.queue import JobQueue
from pacs_exporter.settings import Settings
from pacs_exporter.worker import Workers


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


async def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


async def get_workers(request: Request) -> Workers:
    workers: Workers = request.app.state.workers
    return workers


SettingsDep = Annotated[Settings, Depends(get_settings)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
WorkersDep = Annotated[Workers, Depends(get_workers)]
