"""Background scheduling inside a server process: the embedded scheduler and shutdown bookkeeping."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from skuport.config import Settings, get_settings
from skuport.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class Background:
    """What :func:`start_background` started."""

    scheduler: Scheduler | None


def start_background(settings: Settings | None = None) -> Background:
    """Start the embedded scheduler (and its reaper) when ``SKUPORT_SCHEDULER`` says so."""
    settings = settings or get_settings()
    import skuport.scheduling.runner  # noqa: F401  (registers the export-run task)

    if not settings.scheduler:
        return Background(scheduler=None)
    scheduler = Scheduler(settings=settings)
    scheduler.start()
    log.info("embedded scheduler started (tick every %.1f s)", settings.scheduler_interval)
    return Background(scheduler=scheduler)


def stop_background(background: Background, settings: Settings | None = None) -> None:
    """Stop ticking, let running exports finish within the grace, fail the rest ("server shut down")."""
    from skuport.scheduling.executor import get_executor
    from skuport.scheduling.runner import TRACKER

    settings = settings or get_settings()
    if background.scheduler is not None:
        background.scheduler.stop()
    marked = TRACKER.shutdown(grace=settings.shutdown_grace)
    if marked:
        log.warning("marked %d run(s) failed at shutdown: %s", len(marked), ", ".join(marked))
    if get_executor.cache_info().currsize:
        get_executor().shutdown(wait=False)
        get_executor.cache_clear()
