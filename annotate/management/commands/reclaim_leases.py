"""Gives the slots of lapsed leases back to the pool.

`assignment_next` already reclaims lapsed leases of its stage on the way; this sweep is for
studies that nobody is working on right now (run it from cron, e.g. every minute).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from annotate.services import assignments_reclaim_expired


class Command(BaseCommand):
    help = "Give the slots of lapsed leases back to the pool (run periodically, e.g. from cron)."

    def handle(self, *args: object, **options: object) -> None:
        total = 0
        while reclaimed := assignments_reclaim_expired(limit=500):
            total += reclaimed
        self.stdout.write(f"Reclaimed {total} lapsed lease(s).")
