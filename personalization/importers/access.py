"""Who may import into a study: its owners, and superusers. Everyone else gets a 404, so an
outsider cannot learn that the study exists."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from personalization.models import Study


def study_get_for_import(*, user: AbstractBaseUser | AnonymousUser, study_id: int | str) -> Study:
    """The study if the user may import into it; Http404 otherwise."""
    if not user.is_authenticated:
        raise Http404("No such study.")
    try:
        study_pk = int(study_id)
    except (TypeError, ValueError):
        raise Http404("No such study.") from None
    studies = Study.objects.all() if getattr(user, "is_superuser", False) else Study.objects.filter(owners__pk=user.pk)
    study = studies.filter(pk=study_pk).first()
    if study is None:
        raise Http404("No such study.")
    return study
