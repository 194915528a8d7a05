"""The OpenAPI schema (/api/schema/, OpenAPI 3.1) and its docs page (/api/docs/).

The schema is generated with warnings as errors, so an endpoint added without request and
response schemas fails here; every /api/ URL the resolver knows is in it; every operation
documents its error shapes; the docs page loads only the project's own static files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.response import Response
from rest_framework.views import APIView

# Not operations: the schema and the docs page themselves, and the router's index page.
NOT_IN_SCHEMA = {"/api/", "/api/schema/", "/api/docs/"}


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolver_urls(patterns=None, prefix: str = "/") -> set[str]:
    """Every URL the resolver serves, each parameter replaced by ``1``."""
    urls: set[str] = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = str(entry.pattern)
        if "format>" in route:
            continue  # the router's ``.json`` suffix twins of each route
        route = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "1", route)
        route = route.removeprefix("^").removesuffix("$").replace("\\", "")
        if isinstance(entry, URLResolver):
            urls |= _resolver_urls(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            urls.add(prefix + route)
    return urls


def test_the_schema_generates_without_a_single_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "openapi: 3.1.0" in out.read_text()


def test_an_endpoint_without_a_schema_would_fail_the_check():
    class BareApi(APIView):
        def get(self, request):
            return Response({})

    GENERATOR_STATS.reset()
    SchemaGenerator(patterns=[path("api/bare/", BareApi.as_view())]).get_schema(public=True)
    assert GENERATOR_STATS  # what --fail-on-warn turns into a failure
    GENERATOR_STATS.reset()


def test_every_api_url_the_resolver_serves_is_in_the_schema():
    documented = {re.sub(r"\{[^}]+\}", "1", p) for p in _schema()["paths"]}
    served = {url for url in _resolver_urls() if url.startswith("/api/")}
    assert served - NOT_IN_SCHEMA - documented == set()
    assert len(documented) >= 15


def test_every_operation_documents_its_success_and_error_shapes():
    schema = _schema()
    assert schema["openapi"] == "3.1.0"
    assert set(schema["components"]["securitySchemes"]) == {"knoxApiToken", "cookieAuth"}
    for url, item in schema["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {url}"
            codes = set(operation["responses"])
            success = [c for c in codes if c.startswith("2")]
            assert success, where
            for code in success:
                if code != "204":
                    assert (
                        "schema" in operation["responses"][code]["content"]["application/json"]
                    ), where
            expected = {"400", "429"}
            if operation.get("security") != [{}] and url != "/api/tokens/login/":
                expected |= {"401", "403"}
            if "{" in url:
                expected.add("404")
            assert expected <= codes, (where, expected - codes)
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
            if method in ("post", "put", "patch") and "requestBody" in operation:
                assert operation["requestBody"]["content"]["application/json"]["schema"], where
    errors = schema["components"]["schemas"]
    assert errors["Error"]["required"] == ["detail"]
    assert errors["ValidationError"]["additionalProperties"]


def test_query_parameters_document_exactly_what_the_api_accepts():
    from portfolio.api.base import CURSOR_PATTERN

    paths = _schema()["paths"]
    trades = {p["name"]: p for p in paths["/api/trades/"]["get"]["parameters"]}
    ordering = trades["ordering"]
    assert (ordering["style"], ordering["explode"]) == ("form", False)
    assert {"date", "-date", "id", "-id"} <= set(ordering["schema"]["items"]["enum"])
    assert trades["cursor"]["schema"] == {"type": "string", "pattern": CURSOR_PATTERN}
    assert trades["portfolio"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**63 - 1,
    }
    assert trades["ticker"]["schema"] == {
        "type": "string",
        "minLength": 1,
        "pattern": r"^[^\x00]+$",
    }
    assert trades["format"]["schema"]["enum"] == ["csv", "json"]
    assert "404" in paths["/api/trades/"]["get"]["responses"]  # a cursor whose row is gone
    assert "404" in paths["/api/positions/netted/"]["get"]["responses"]  # unknown portfolio
    offset = next(
        p for p in paths["/api/portfolios/"]["get"]["parameters"] if p["name"] == "offset"
    )
    assert (offset["schema"]["minimum"], offset["schema"]["maximum"]) == (0, 2**63 - 1)
    audit = _schema()["components"]["schemas"]["ConfigChange"]["properties"]
    assert "oneOf" not in audit["before"] and "oneOf" not in audit["after"]  # null: once


@pytest.mark.django_db
def test_the_schema_is_served_to_signed_in_users_only(client, logged_in):
    response = logged_in.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200 and response.json()["openapi"] == "3.1.0"
    assert "/api/trades/" in response.json()["paths"]
    logged_in.logout()
    assert client.get("/api/schema/").status_code == 401


@pytest.mark.django_db
def test_the_docs_page_loads_only_the_projects_own_static_files(logged_in):
    html = logged_in.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    # Swagger UI's init script comes from the page's own URL (the CSP allows no inline one)
    init = [ref for ref in refs if ref.startswith("/api/docs/?")]
    refs = [ref for ref in refs if ref not in init]
    assert len(refs) >= 3 and all(ref.startswith("/static/") for ref in refs), refs
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr", html)
    assert init == ["/api/docs/?script="]
    script = logged_in.get(init[0])
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content and b"/api/schema/" in script.content
    for ref in refs:  # served by whitenoise, like every other static file
        response = logged_in.get(ref)
        assert response.status_code == 200, ref
        assert b"".join(response.streaming_content), ref


def test_collectstatic_gathers_the_docs_page_files(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", "--noinput", verbosity=0)
    dist = Path(tmp_path) / "drf_spectacular_sidecar" / "swagger-ui-dist"
    assert (dist / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert (dist / "swagger-ui.css").exists()
