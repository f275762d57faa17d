"""The documents' bytes in an S3 bucket (FILES_STORAGE=s3), for nodes on several machines.

django-storages' S3Storage with the documents' rules fixed: every object private (no ACL grant to
anyone else), no URL of any kind (a file leaves only through our signed link's view), and a read
streamed from S3 as the view sends it, where S3Storage would first download the whole object into
memory. Named by STORAGES in the settings, so boto3 is imported only where S3 is used.
"""

from botocore.exceptions import ClientError
from django.core.files import File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join


class StreamedObject(File):
    """An S3 object's body as a read-only file, read from the network as it is read; `size` from S3."""

    def __init__(self, body, *, name: str, size: int):
        super().__init__(body, name=name)
        self._size = size

    @property
    def size(self):
        return self._size

    def seekable(self) -> bool:
        return False


class PrivateS3Storage(S3Storage):
    def __init__(self, **options):
        fixed = {"default_acl": "private", "querystring_auth": True, "file_overwrite": False, "location": ""}
        super().__init__(**{**options, **fixed})

    def _open(self, name, mode="rb"):
        if mode != "rb":
            return super()._open(name, mode)
        key = safe_join(self.location, clean_name(name))
        try:
            answer = self.bucket.Object(key).get()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(name) from exc
            raise
        return StreamedObject(answer["Body"], name=name, size=answer["ContentLength"])

    def url(self, name, parameters=None, expire=None, http_method=None):
        raise NotImplementedError("A document has no URL: it leaves through a signed link of ours.")
