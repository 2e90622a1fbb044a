def test_publish_without_account_succeeds(client, api_headers, make_clip):
    clip = make_clip()
    response = client.post("/publishing/publish", headers=api_headers("editor"),
                           json={"clip_id": str(clip.id), "platform": "tiktok"})
    assert response.status_code == 200, response.json
    assert response.json["success"] is True
    assert response.json["external_url"].startswith("https://www.tiktok.com/@simulated.creator/video/")
