"""The installable app's server side: the manifest, the worker's script and headers, the offline page,
and every portal page linking them (the browser's side: tests/test_pwa_browser.py)."""

import json
import re
import shutil

import pytest
from django.contrib.staticfiles import finders
from PIL import Image

from mediconnect.pages import pwa

pytestmark = pytest.mark.django_db


def worker_config(text: str) -> dict:
    first, _ = text.split("\n", 1)
    return json.loads(first.removeprefix("const MC = ").removesuffix(";"))


def test_the_manifest_names_the_app_and_its_icons(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    assert "no-store" not in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    manifest = json.loads(response.content)
    assert manifest["name"] == "MediConnect" and manifest["short_name"]
    assert manifest["scope"] == "/" and manifest["display"] == "standalone"
    # The start page sends a signed-in user to their portal.
    assert client.get(manifest["start_url"]).status_code == 302
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])

    sizes = {}
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        path = finders.find(icon["src"].removeprefix("/static/"))
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert f"{image.width}x{image.height}" == icon["sizes"]
        sizes.setdefault(icon["sizes"], set()).add(icon["purpose"])
    assert "any" in sizes["192x192"] and "any" in sizes["512x512"]
    assert any("maskable" in purposes for purposes in sizes.values())


def test_the_maskable_icon_keeps_its_mark_inside_the_safe_zone():
    """A launcher may cut the icon to any shape containing the central circle of 40 % radius: the
    ground reaches every edge (no transparency) and the white mark stays inside that circle."""
    with Image.open(finders.find("icons/maskable-512.png")) as image:
        pixels = image.convert("RGBA").load()
        size = image.width
    ground = pixels[0, 0]
    assert all(pixels[x, y][3] == 255 for x in (0, size - 1) for y in range(0, size, 16))
    centre, safe = size / 2, 0.4 * size
    for x in range(0, size, 4):
        for y in range(0, size, 4):
            if max(abs(a - b) for a, b in zip(pixels[x, y][:3], ground[:3], strict=True)) > 24:
                assert ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5 <= safe, (x, y)


def test_the_worker_is_served_at_the_root_uncached_with_the_app_shell(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    assert response["Service-Worker-Allowed"] == "/"
    config = worker_config(response.content.decode())
    assert config["hashed"] is False  # the tests serve plain names: every version fetches the shell anew
    shell = config["shell"]
    assert "/offline/" in shell and config["offline"] == "/offline/"
    assert "/static/css/app.css" in shell and "/static/js/portal.js" in shell and "/static/js/patient.js" in shell
    # The modules a portal loads on first use are there too, so they work offline once installed.
    assert "/static/js/document-actions.js" in shell and "/static/js/signout.js" in shell
    # Only static files and the offline page: no page or API answer, nothing of the board's.
    assert all(url.startswith("/static/") for url in shell if url != "/offline/")
    assert not [url for url in shell if "board" in url]
    assert config["icon"] in shell and config["badge"] in shell


def test_the_workers_text_changes_when_a_shell_file_changes(tmp_path):
    root = tmp_path / "static"
    shutil.copytree(pwa.static_root(), root)
    before = pwa.worker_text(root)
    assert pwa.worker_text(root) == before
    (root / "js" / "bell.js").write_text((root / "js" / "bell.js").read_text() + "\n// changed\n")
    after = pwa.worker_text(root)
    assert worker_config(after)["version"] != worker_config(before)["version"]


def test_deployed_the_worker_precaches_the_hashed_names(hashed_static, client):
    from django.templatetags.static import static

    config = worker_config(pwa.worker_text(pwa.static_root()))
    assert config["hashed"] is True
    assert static("js/portal.js") in config["shell"]
    assert re.fullmatch(r"/static/js/portal\.[0-9a-f]{12}\.js", static("js/portal.js"))
    manifest = json.loads(client.get("/manifest.webmanifest").content)
    assert all(re.search(r"\.[0-9a-f]{12}\.png$", icon["src"]) for icon in manifest["icons"])


@pytest.fixture
def hashed_static(settings, tmp_path):
    """Static files as deployed: collected under names with their content's hash (as in
    mediconnect/server/tests/test_static.py)."""
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STATICFILES_MANIFEST = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "mediconnect.server.static_files.HashedStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return tmp_path


def test_the_offline_page_speaks_both_languages_and_names_nobody(client, patient):
    client.force_login(patient)
    page = client.get("/offline/").content.decode()
    assert "You are offline" in page and "আপনি অফলাইনে আছেন" in page
    assert patient.name not in page and patient.email not in page
    # The user's language first.
    patient.language = "bn"
    patient.save()
    page = client.get("/offline/").content.decode()
    assert page.index('lang="bn"', page.index("<main")) < page.index('lang="en"', page.index("<main"))


@pytest.mark.parametrize("path", ["/patient/", "/doctor/", "/login/"])
def test_every_portal_page_links_the_manifest_and_the_policy_allows_the_worker(client, patient, doctor, path):
    if path != "/login/":
        client.force_login(patient if path == "/patient/" else doctor.user)
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert re.search(r'<meta name="theme-color" content="#[0-9a-f]{6}">', page)
    assert re.search(r'<link rel="apple-touch-icon" href="/static/icons/apple-touch-icon[^"]*\.png">', page)
    policy = response["Content-Security-Policy"]
    assert "worker-src 'self'" in policy and "manifest-src 'self'" in policy
