"""Media readers and writers; the only place pixel formats of files are converted."""

from .images import FORMATS, SUFFIXES, Picture, encode_image, read_image, write_image

__all__ = ["FORMATS", "SUFFIXES", "Picture", "encode_image", "read_image", "write_image"]
