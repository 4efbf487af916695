"""Rendering stored images for display (PS3.18 §8.3.5, PS3.3 C.11): pure pixel functions.

- :mod:`~pacs_api.imaging.windowing`: the VOI window functions of PS3.3 C.11.2.1.2/C.11.2.1.3.
- :mod:`~pacs_api.imaging.render`: decode a frame and turn it into 8-bit display values
  (Modality LUT, VOI, photometric interpretation).
- :mod:`~pacs_api.imaging.encode`: viewport (crop and scale) and JPEG/PNG encoding with Pillow.
- :mod:`~pacs_api.imaging.params`: the rendering query parameters, parsed and checked.
"""
