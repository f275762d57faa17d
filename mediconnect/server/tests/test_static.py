"""Static files with DEBUG off, as deployed: daphne serves them through the ASGI application itself."""

import re

import pytest
from django.conf import settings

from tests.support.asgiutil import asgi_get

JAVASCRIPT = ("text/javascript", "application/javascript")


async def get(path):
    """(status, content type, body) of a GET through the ASGI application."""
    status, headers, body = await asgi_get(path)
    return status, headers.get(b"Content-Type", b"").decode(), body


@pytest.fixture(autouse=True)
def _debug_off():
    assert settings.DEBUG is False


@pytest.mark.parametrize(
    ("path", "content_types"),
    [
        ("/static/js/patient.js", JAVASCRIPT),
        ("/static/js/socket.js", JAVASCRIPT),
        ("/static/admin/css/base.css", ("text/css",)),
        ("/static/admin/js/core.js", JAVASCRIPT),
        ("/static/fonts/noto-sans-bengali-subset.woff2", ("font/woff2",)),
    ],
)
async def test_portal_and_admin_static_files_are_served(path, content_types):
    status, content_type, body = await get(path)
    assert status == 200
    assert content_type.split(";")[0] in content_types
    assert body


@pytest.mark.django_db(transaction=True)
async def test_swagger_ui_loads_its_own_bundle_and_styles():
    status, _, page = await get("/api/docs/")
    assert status == 200
    assets = dict.fromkeys(re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', page.decode()))
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), page
    assert any(a.endswith(".css") for a in assets), page
    for asset in assets:
        status, content_type, body = await get(asset)
        expected = ("text/css",) if asset.endswith(".css") else JAVASCRIPT if asset.endswith(".js") else None
        assert status == 200, asset
        assert body, asset
        if expected:
            assert content_type.split(";")[0] in expected, (asset, content_type)


async def test_a_missing_static_file_is_a_404():
    status, _, _ = await get("/static/js/no-such-file.js")
    assert status == 404


@pytest.fixture
def hashed_static(settings, tmp_path):
    """Deployed static files: collected into STATIC_ROOT under names with their content's hash."""
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STATICFILES_MANIFEST = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "mediconnect.server.static_files.HashedStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return tmp_path


async def test_deployed_pages_name_hashed_static_files_and_daphne_serves_them(hashed_static):
    from django.templatetags.static import static

    portal = static("js/portal.js")
    assert re.fullmatch(r"/static/js/portal\.[0-9a-f]{12}\.js", portal)
    status, content_type, body = await get(portal)
    assert status == 200
    assert content_type.split(";")[0] in JAVASCRIPT
    # Its import of the socket module names the socket module's hashed file, which is served too.
    imported = re.search(rb'from "\./(socket\.[0-9a-f]{12}\.js)"', body)
    assert imported, body[:300]
    assert (await get(f"/static/js/{imported.group(1).decode()}"))[0] == 200
    assert (await get("/static/js/no-such-file.js"))[0] == 404


CLIMBING = ["/static/../settings.py", "/static/css/../../x", "/static/js/../../../etc/passwd", "/static/.."]


@pytest.mark.parametrize("path", CLIMBING)
async def test_a_path_that_climbs_out_of_static_is_a_clean_404(path, caplog):
    status, _, _ = await get(path)
    assert status == 404
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("path", CLIMBING)
async def test_a_path_that_climbs_out_of_the_collected_files_is_a_clean_404(path, hashed_static, caplog):
    status, _, _ = await get(path)
    assert status == 404
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
