"""Static files as deployed: hashed names, and daphne's own serving of them when nginx is not in front.

With `STATICFILES_MANIFEST` on (DEBUG off), `collectstatic` writes every file twice into STATIC_ROOT,
as it is and under a name with a hash of its content, and `{% static %}` writes the hashed name.
The portals' ES modules import each other (`import … from "./socket.js"`); those imports are
rewritten to the hashed names too, so a page never mixes a new module with a cached old one.
nginx serves STATIC_ROOT itself (deploy/nginx/); without it (`make run`) daphne serves it here,
before Django's middleware, as it served the apps' files before.
"""

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.http import Http404
from django.views import static


class HashedStaticFilesStorage(ManifestStaticFilesStorage):
    support_js_module_import_aggregation = True  # Django's rewriting of `import … from "./x.js"`


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's ASGI static handler; with hashed names it serves the collected files in STATIC_ROOT
    (the apps' own folders do not have the hashed names)."""

    def serve(self, request):
        # A `..` would climb out of the static files, which Django refuses by raising
        # SuspiciousFileOperation: here, before the middleware and its handling of that, a 500 with a
        # traceback. No static file has `..` in its name: not found.
        if ".." in self.file_path(request.path).split("/"):
            raise Http404("no such static file")
        if not settings.STATICFILES_MANIFEST:
            return super().serve(request)
        return static.serve(request, self.file_path(request.path), document_root=settings.STATIC_ROOT)
