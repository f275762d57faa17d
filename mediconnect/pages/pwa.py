"""The installable app: its web app manifest, its service worker and the page it shows offline.

The worker (mediconnect/pages/sw.js, served at the site's root so its scope is the whole site) keeps
only the app shell: the hashed static files the portals load and the offline page. Pages and API
answers, which carry patient data, always go to the network and are never stored (docs/pwa.md).
"""

import functools
import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from mediconnect.operations.cache_control import cacheable

THEME_COLOR = "#0a7d6e"  # --accent in static/css/app.css
BACKGROUND_COLOR = "#f3f6f7"  # --bg
OFFLINE_URL = "/offline/"
WORKER_SOURCE = Path(__file__).with_name("sw.js")
# A browser checks the manifest again now and then; an hour's copy is fresh enough for a name or icon.
MANIFEST_MAX_AGE = 3600

# What the worker precaches, as patterns over the project's own static folder: the portals' styles,
# modules (loaded at once or on first use), Bangla webfont and icons. Not the waiting-room board's
# files (a TV, not a phone), the API docs' style, nor the fonts for PDFs (rendered on the server).
SHELL_PATTERNS = ("css/*.css", "js/*.js", "fonts/*.woff2", "icons/*.png")
SHELL_EXCLUDE = frozenset({"css/board.css", "css/api-docs.css", "js/board.js"})


def static_root() -> Path:
    """The project's own static folder (the portals' files; not the apps' nor the collected copy)."""
    return Path(settings.BASE_DIR) / "static"


def shell_files(root: Path) -> list[str]:
    """The static names of the app shell under `root`, in a stable order."""
    names = {path.relative_to(root).as_posix() for pattern in SHELL_PATTERNS for path in root.glob(pattern)}
    return sorted(names - SHELL_EXCLUDE)


def worker_text(root: Path) -> str:
    """The worker's script: its configuration (shell, version, icons) above its source."""
    source = WORKER_SOURCE.read_text()
    names = shell_files(root)
    urls = [staticfiles_storage.url(name) for name in names]
    # The version changes with the worker's code and with any shell file's content, so a browser sees
    # a new sw.js (it compares the bytes), installs it and drops the old cache. With hashed names the
    # URLs change too; the content's hash also covers DEBUG and the tests, which serve plain names.
    digest = hashlib.sha256(source.encode())
    for name, url in zip(names, urls, strict=True):
        digest.update(f"{name}\0{url}\0".encode())
        digest.update(hashlib.sha256((root / name).read_bytes()).digest())
    config = {
        "version": digest.hexdigest()[:16],
        # Names with their content's hash (deployed): a file of the same name never changes.
        "hashed": bool(settings.STATICFILES_MANIFEST),
        "shell": [*urls, OFFLINE_URL],
        "offline": OFFLINE_URL,
        "icon": staticfiles_storage.url("icons/icon-192.png"),
        "badge": staticfiles_storage.url("icons/badge-96.png"),
    }
    return f"const MC = {json.dumps(config)};\n{source}"


@functools.cache
def _worker_text_cached() -> str:
    return worker_text(static_root())


@require_GET
def service_worker(request):
    """GET /sw.js: the worker at the root scope. `no-cache`, so a browser checks every time for a new one."""
    # Made once per process as deployed (the files do not change under it); again each time in DEBUG.
    text = worker_text(static_root()) if settings.DEBUG else _worker_text_cached()
    response = HttpResponse(text, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return cacheable(response)


def manifest_data() -> dict:
    icon = staticfiles_storage.url
    return {
        "id": "/",
        "name": "MediConnect",
        "short_name": "MediConnect",
        "description": "Your clinic appointments, live queue and reports",
        "lang": "en",
        # "/" sends a signed-in user to their portal and anyone else to the sign-in page.
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {"src": icon("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": icon("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": icon("icons/maskable-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }


@require_GET
def manifest(request):
    """GET /manifest.webmanifest: the same for every user and language, so shared caches may keep it briefly."""
    response = JsonResponse(manifest_data(), content_type="application/manifest+json")
    response["Cache-Control"] = f"public, max-age={MANIFEST_MAX_AGE}"
    return cacheable(response)


@require_GET
def offline(request):
    """GET /offline/: what the worker shows for a page that could not be loaded. It is stored on the
    device, so it says nothing about the user; it speaks both languages, the user's first."""
    first = get_language() if get_language() in ("en", "bn") else "en"
    languages = [first, "bn" if first == "en" else "en"]
    return render(request, "pwa/offline.html", {"languages": languages})
