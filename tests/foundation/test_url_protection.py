"""Every route requires login, except an explicit allow-list.

The walker enumerates the URL resolver, so a route added later without protection fails here.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

# Pages an anonymous visitor may load: the two login forms and the static file server.
PUBLIC = {"login", "admin:login"}
# Placeholder values for URL parameters, by converter regex.
SAMPLE_BY_REGEX = {r"[0-9]+": "1", r"[^/]+": "x", r"[-a-zA-Z0-9_]+": "x", r".+": "x"}


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            found += _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}{p.name}" if p.name else ""
            found.append((prefix + str(p.pattern), name))
    return found


def _concrete(route: str) -> str:
    """Turns a route pattern into a path with placeholder values."""
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: "1" if m.group(1) in ("int", None) else "x", route)
    path = path.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")
    path = re.sub(r"\(\?P<\w+>([^)]*)\)", lambda m: SAMPLE_BY_REGEX.get(m.group(1), "1"), path)
    path = re.sub(r"\(\?:[^)]*\)\??", "", path)
    return "/" + path.lstrip("/")


def _all_routes() -> list[tuple[str, str]]:
    return sorted(set(_walk(get_resolver().url_patterns)))


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "name"), _all_routes())
def test_anonymous_users_are_refused_everywhere_but_login(route: str, name: str, anon_client: Client) -> None:
    path = _concrete(route)
    if name in PUBLIC or path.startswith("/static/"):
        return
    for method in ("get", "post"):
        response = getattr(anon_client, method)(path)
        if response.status_code in (301, 302):
            location = response["Location"]
            assert "/login/" in location, f"{method.upper()} {path} redirected to {location}, not to a login page"
        else:
            # API views answer without redirecting so that token clients see a clear status.
            assert response.status_code in (401, 403, 404, 405), (
                f"anonymous {method.upper()} {path} ({name}) got {response.status_code}"
            )
            assert response.status_code != 404 or path.startswith("/api/"), f"{path} answered 404 before login"


def test_walker_finds_routes() -> None:
    names = {name for _, name in _all_routes()}
    assert {"home", "login", "logout", "admin:index", "api-schema"} <= names


@pytest.mark.django_db
def test_login_page_is_public(anon_client: Client) -> None:
    response = anon_client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in to Attune" in response.content
