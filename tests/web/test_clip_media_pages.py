"""The clips pages with real videos: the player streamed with ranges, facts, thumbnails, where the
clip can go, the cover picker, the edit page of an uploaded clip, and the pages' tus endpoint."""

from __future__ import annotations

import base64
import io
import re
import uuid

import pytest
from PIL import Image

from dashboard.media.clips import create_clip_with_video
from dashboard.models import Clip, MediaUpload

from media_support import LANDSCAPE, VERTICAL, VERTICAL_15FPS, frame_red

HTMX = {"HX-Request": "true"}
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def uploaded(db, videos):
    """uploaded(spec, title=...) -> a clip made from a real video, as the upload path makes it."""

    def make(spec=VERTICAL, title="Phone video"):
        path = videos.video(spec)
        return create_clip_with_video(db, {"title": title}, path, f"{title}.{spec.container}")

    return make


def test_clip_page_plays_the_video_and_shows_its_facts(client, login, uploaded):
    login("viewer")
    clip = uploaded(VERTICAL)
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)

    player = re.search(r'<video id="clip-player"[^>]*>', html).group(0)
    assert f'src="/clips/{clip.id}/video?v=' in player
    assert f'poster="/clips/{clip.id}/thumbnail.jpg?v=' in player
    assert "360&times;640 (vertical), 30 fps" in html
    assert "MP4, h264 + aac (2 ch, 44100 Hz)" in html
    assert re.search(r'id="fact-duration">4\.0 s<', html)
    assert re.search(r'id="fit-tiktok" class="fit-ok"', html)
    # Viewers watch; only editors get the cover picker and the upload zone.
    assert 'id="cover-form"' not in html and "data-upload" not in html
    # No inline script: a strict Content-Security-Policy must not break the page.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_clip_page_says_which_platforms_refuse_it_and_why(client, login, uploaded):
    login("editor")
    clip = uploaded(VERTICAL_15FPS)
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    tiktok = re.search(r'<li id="fit-tiktok" class="fit-no">(.*?)</ul>', html, re.S).group(1)
    assert "will refuse it" in tiktok and "TikTok needs at least 23 fps; this clip has 15" in tiktok
    assert re.search(r'id="fit-youtube" class="fit-ok"', html)

    wide = uploaded(LANDSCAPE, title="Wide")
    html = client.get(f"/clips/{wide.id}").get_data(as_text=True)
    assert "YouTube Shorts must be vertical or square; this clip is 640x360" in html


def test_a_link_clip_says_it_has_no_upload(client, login, make_clip):
    login("editor")
    clip = make_clip(duration_seconds=200.0)
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert 'id="no-upload"' in html and 'id="clip-player"' not in html
    assert "the clip lasts 200 s; YouTube allows at most 180 s" in html
    assert f'data-clip-id="{clip.id}"' in html  # the editor may upload its file


def test_the_player_streams_with_range_requests(client, login, uploaded, videos):
    login("viewer")
    clip = uploaded(VERTICAL)
    size = clip.media_size_bytes
    response = client.get(f"/clips/{clip.id}/video", headers={"Range": "bytes=0-1023"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-1023/{size}"
    assert len(response.data) == 1024 and response.mimetype == "video/mp4"
    assert client.get(f"/clips/{clip.id}/video", headers={"Range": f"bytes={size}-"}).status_code == 416
    client.get("/logout")


def test_video_and_thumbnail_need_a_signed_in_user(client, uploaded):
    clip = uploaded(VERTICAL)
    for path in (f"/clips/{clip.id}/video", f"/clips/{clip.id}/thumbnail.jpg"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_clips_list_shows_thumbnails(client, login, uploaded, make_clip):
    login("viewer")
    clip = uploaded(VERTICAL, title="With video")
    make_clip(title="Just a link")
    html = client.get("/clips").get_data(as_text=True)
    assert html.count('class="thumb"') == 1
    src = re.search(r'<img class="thumb" src="([^"]+)"', html).group(1)
    assert src.startswith(f"/clips/{clip.id}/thumbnail.jpg")
    image = Image.open(io.BytesIO(client.get(src).data))
    assert image.size[1] > image.size[0]


def test_editor_picks_the_cover_frame(client, db, login, uploaded):
    login("editor")
    clip = uploaded(VERTICAL)
    old_thumbnail = clip.thumbnail_key
    response = client.post(f"/clips/{clip.id}/cover", data={"cover_seconds": "2.5"}, headers=HTMX)
    assert response.status_code == 200
    db.session.expire_all()
    clip = db.session.get(Clip, clip.id)
    assert clip.cover_offset_ms == 2500 and clip.thumbnail_key != old_thumbnail
    assert 'id="cover-at">2.5<' in response.get_data(as_text=True)
    image = Image.open(io.BytesIO(client.get(f"/clips/{clip.id}/thumbnail.jpg").data))
    assert abs(image.getpixel((5, 5))[0] - frame_red(75)) < 12


def test_a_cover_past_the_end_is_refused_inline(client, db, login, uploaded):
    login("editor")
    clip = uploaded(VERTICAL)
    before = (clip.cover_offset_ms, clip.thumbnail_key)
    response = client.post(f"/clips/{clip.id}/cover", data={"cover_seconds": "99"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="cover-error"[^>]*>Must be between 0 and 4\d\d\d', html)
    db.session.expire_all()
    clip = db.session.get(Clip, clip.id)
    assert (clip.cover_offset_ms, clip.thumbnail_key) == before


def test_editing_an_uploaded_clip_keeps_its_file_and_duration(client, db, login, uploaded):
    login("editor")
    clip = uploaded(VERTICAL)
    html = client.get(f"/clips/{clip.id}/edit").get_data(as_text=True)
    assert 'name="media"' not in html and 'name="duration_seconds"' not in html
    response = client.post(f"/clips/{clip.id}/edit", data={"title": "Renamed", "description": "d"})
    assert response.status_code == 302
    db.session.expire_all()
    clip = db.session.get(Clip, clip.id)
    assert clip.title == "Renamed" and clip.has_upload and clip.duration_seconds == pytest.approx(4.0, abs=0.1)


def test_new_clip_page_offers_the_upload_zone(client, login):
    login("editor")
    html = client.get("/clips/new").get_data(as_text=True)
    zone = re.search(r'<div id="upload-zone"[^>]*>', html).group(0)
    assert 'data-endpoint="/clips/uploads"' in zone and 'data-title-input="upload-title"' in zone
    assert "vendor/tus-js-client-4.3.1.min.js" in html and "upload.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_pages_upload_through_tus_with_the_session(client, db, login, videos):
    login("editor")
    data = videos.video(VERTICAL).read_bytes()
    created = client.post("/clips/uploads", headers={
        **TUS, "Upload-Length": str(len(data)),
        "Upload-Metadata": f"filename {b64('beach.mp4')},title {b64('Beach day')}"})
    assert created.status_code == 201 and created.headers["Location"].startswith("/clips/uploads/")
    half = len(data) // 2
    first = client.patch(created.headers["Location"], data=data[:half], headers={
        **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert first.status_code == 204
    assert client.head(created.headers["Location"], headers=TUS).headers["Upload-Offset"] == str(half)
    last = client.patch(created.headers["Location"], data=data[half:], headers={
        **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(half)})
    assert last.status_code == 204
    clip = db.session.get(Clip, uuid.UUID(last.headers["Clip-Id"]))
    assert last.headers["Clip-Location"] == f"/clips/{clip.id}"
    assert clip.title == "Beach day" and clip.media == "beach.mp4"


def test_pages_tus_refusals_are_problem_json(client, db, login, videos):
    login("editor")
    data = videos.not_a_video().read_bytes()
    created = client.post("/clips/uploads", headers={**TUS, "Upload-Length": str(len(data)),
                                                      "Upload-Metadata": f"filename {b64('n.mp4')}"})
    refused = client.patch(created.headers["Location"], data=data, headers={
        **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
    assert "not a video file" in refused.json["detail"]
    assert db.session.query(MediaUpload).count() == 0 and db.session.query(Clip).count() == 0


def test_viewers_cannot_upload_from_the_pages(client, login):
    login("viewer")
    assert client.post("/clips/uploads", headers={**TUS, "Upload-Length": "10"}).status_code == 403


class TestWithCsrf:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_page_uploads_need_the_csrf_token(self, client, login):
        login("editor")
        html = client.get("/clips/new").get_data(as_text=True)
        token = re.search(r'data-csrf="([^"]+)"', html).group(1)
        headers = {**TUS, "Upload-Length": "10", "Upload-Metadata": f"filename {b64('a.mp4')}"}
        assert client.post("/clips/uploads", headers=headers).status_code == 400
        created = client.post("/clips/uploads", headers={**headers, "X-CSRFToken": token})
        assert created.status_code == 201
        patch = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        assert client.patch(created.headers["Location"], data=b"0123", headers=patch).status_code == 400
        assert client.patch(created.headers["Location"], data=b"0123",
                            headers={**patch, "X-CSRFToken": token}).status_code == 204


def test_upload_zones_carry_the_chunk_size(client, app, login, make_clip):
    login("editor")
    app.config["MEDIA_UPLOAD_CHUNK_BYTES"] = 12345
    for path in ("/clips/new", f"/clips/{make_clip().id}"):
        assert 'data-chunk-size="12345"' in client.get(path).get_data(as_text=True)


# The post preview beside the publish panel -------------------------------------------------------

def preview_block(html: str, platform: str) -> str:
    return re.search(rf'<div id="preview-{platform}"(.*?data-count="caption"[^<]*)</small>', html, re.S).group(1)


def test_the_clip_page_shows_a_preview_that_follows_the_publish_panel(client, login, uploaded):
    login("editor")
    clip = uploaded(VERTICAL, title="Morning run")
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    section = re.search(r'<section id="post-preview"[^>]*>', html, re.S).group(0)
    assert f'data-preview-url="/clips/{clip.id}/preview"' in section and "preview.js" in html
    assert "No caption yet." in preview_block(html, "instagram")
    assert "0 / 2200 characters" in preview_block(html, "instagram")


def test_the_preview_cuts_counts_and_names_the_account(client, login, uploaded, make_account, app):
    login("editor")
    clip = uploaded(VERTICAL, title="Morning run")
    account = make_account("instagram", handle="acme.sports")
    caption = "Sunrise " * 20  # 160 characters
    html = client.get(f"/clips/{clip.id}/preview", query_string={
        "caption": caption, "hashtags": "run, 早朝", "social_account_id": str(account.id),
        "platform": "instagram"}, headers=HTMX).get_data(as_text=True)

    instagram = preview_block(html, "instagram")
    text = caption + "\n\n#run #早朝"
    assert "@acme.sports" in instagram
    assert text[:125].rstrip() + "&hellip;" in instagram and "more" in instagram
    assert f"{len(text)} / 2200 characters" in instagram
    tiktok = preview_block(html, "tiktok")
    assert "the chosen account" in tiktok and f"{len(text.encode('utf-16-le')) // 2} / 2200 UTF-16 units" in tiktok
    youtube = preview_block(html, "youtube")
    assert "<strong>Morning run</strong>" in youtube and "title 11 / 100 characters" in youtube
    assert f"{len(text.encode())} / 5000 bytes" in youtube

    app.config["PLATFORM_LIMITS"] = {**app.config["PLATFORM_LIMITS"],
                                     "tiktok": {**app.config["PLATFORM_LIMITS"]["tiktok"], "caption_max_chars": 100}}
    html = client.get(f"/clips/{clip.id}/preview", query_string={"caption": caption}).get_data(as_text=True)
    assert 'class="preview-count over" data-count="caption">160 / 100' in html
    assert "&hellip;" in preview_block(html, "instagram")


def test_viewers_get_no_preview_panel_and_strangers_no_preview(client, login, make_clip):
    clip = make_clip()
    assert client.get(f"/clips/{clip.id}/preview").status_code == 302  # to the sign-in page
    login("viewer")
    assert 'id="post-preview"' not in client.get(f"/clips/{clip.id}").get_data(as_text=True)


def test_the_history_schedule_and_batch_pages_show_the_clips_thumbnail(client, login, db, uploaded):
    from datetime import timedelta

    from dashboard.models import PublishBatch, PublishLog, PublishStatus, utcnow

    login("viewer")
    clip = uploaded(VERTICAL)
    batch = PublishBatch(clip_id=clip.id)
    db.session.add(batch)
    db.session.flush()
    when = utcnow() + timedelta(minutes=5)
    db.session.add_all([
        PublishLog(clip_id=clip.id, platform="tiktok", status=PublishStatus.FAILED.value,
                   batch_id=batch.id, error_message="refused"),
        PublishLog(clip_id=clip.id, platform="youtube", status=PublishStatus.SCHEDULED.value,
                   scheduled_at=when, next_attempt_at=when),
    ])
    db.session.commit()
    thumbnail = f'src="/clips/{clip.id}/thumbnail.jpg?v='
    week = when.date().isoformat()
    for path in ("/history", f"/schedule?week={week}", f"/batches/{batch.id}"):
        html = client.get(path).get_data(as_text=True)
        assert thumbnail in html, path


def test_a_link_clip_shows_no_thumbnail_in_the_history(client, login, db, make_clip):
    from dashboard.models import PublishLog, PublishStatus

    login("viewer")
    clip = make_clip()
    db.session.add(PublishLog(clip_id=clip.id, platform="tiktok", status=PublishStatus.FAILED.value))
    db.session.commit()
    html = client.get("/history").get_data(as_text=True)
    assert clip.title in html and "thumbnail.jpg" not in html
