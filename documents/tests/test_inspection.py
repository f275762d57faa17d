"""Decoding images is bounded per process: a burst of phone photos waits its turn instead of holding
every decoded picture in memory at once."""

import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ImageOps

from documents import inspection

from .samples import image


def test_no_more_than_decodes_at_once_images_are_decoded_together():
    inside, most, lock = 0, 0, threading.Lock()
    all_waiting = threading.Barrier(inspection.DECODES_AT_ONCE, timeout=10)
    transpose = ImageOps.exif_transpose

    def counted(picture):
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        all_waiting.wait()  # the first ones meet here; a third inside at once would be counted above
        with lock:
            inside -= 1
        return transpose(picture)

    uploads = [SimpleUploadedFile(f"p{n}.jpg", image("JPEG"), "image/jpeg") for n in range(6)]
    with mock.patch.object(inspection.ImageOps, "exif_transpose", counted), ThreadPoolExecutor(6) as pool:
        results = list(pool.map(inspection.inspect_upload, uploads))

    assert most == inspection.DECODES_AT_ONCE
    assert all(result.content_type == "image/jpeg" for result in results)
