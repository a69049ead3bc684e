"""Reads for the annotation layer."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from personalization.models import Study


def studies_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Study]:
    """Studies the user owns or annotates; nothing for anonymous users."""
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(Q(owners=user) | Q(annotators=user)).distinct().order_by("-created_at")
