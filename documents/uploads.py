"""The upload's bytes, streamed: to a temporary file on disk, never whole in memory, and no further
than FILE_MAX_BYTES.

`LimitedUploadHandler` goes first in the request's handler chain (before Django's
TemporaryFileUploadHandler). A body longer than the limit plus room for the form's other fields is
not parsed at all; otherwise each file's bytes are counted as they stream, and the parse stops at
the first byte past the limit. Either way `too_large` is set, and the view answers 413.
"""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload, TemporaryFileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

# Room for the multipart framing and the small fields (kind, title, appointment, patient).
FORM_ALLOWANCE = 64 * 1024


class LimitedUploadHandler(FileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.too_large = False
        self._received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > settings.FILE_MAX_BYTES + FORM_ALLOWANCE:
            self.too_large = True
            return QueryDict(encoding=encoding), MultiValueDict()  # parsed as empty: nothing read
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.FILE_MAX_BYTES:
            self.too_large = True
            # The rest of the body is not parsed (ASGI has it in a spooled temporary file already).
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler stores the bytes


def upload_handlers(request) -> tuple[LimitedUploadHandler, list]:
    """The handler chain of an upload request, and the limiter that says whether it stopped."""
    limiter = LimitedUploadHandler(request)
    return limiter, [limiter, TemporaryFileUploadHandler(request)]
