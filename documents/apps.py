from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Clinical documents"

    def ready(self):
        from .append_only import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="documents.append_only")
