"""The scheduling tests share the export-job fixtures (jobs made through the service, a fake worker)."""

from tests.jobs.conftest import local_root, settings

__all__ = ["local_root", "settings"]
