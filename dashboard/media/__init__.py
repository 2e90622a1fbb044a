"""Real clips: uploaded videos, stored, probed, shown and checked against each platform.

- storage.py   one interface over a local folder (default) or an S3-compatible bucket
- probe.py     what a file is (PyAV): container, codecs, size, frame rate, duration, ...
- thumbnail.py a frame at a chosen time as a small JPEG (Pillow)
- rules.py     per-platform media rules (settings in PLATFORM_LIMITS)
- clips.py     the service: store a clip's video, replace it, pick its cover, check platforms
- uploads.py   resumable uploads (tus 1.0: core + creation + termination), and their sweep
- sources.py   `media_source_for(clip)`: the MediaSource the publishing engine uploads or links
- http.py      serving stored media with HTTP range requests; the upload size allowance
"""
