"""Demo data for a first look: accounts with satellites, and clips."""

from __future__ import annotations

from sqlalchemy import func, select

from .accounts import create_account
from .clips import create_clip
from .models import Clip, SocialAccount
from .schemas import AccountIn, ClipIn

DEMO_ACCOUNTS = {
    "instagram": ("acme", "Acme", ["acme.sports", "acme.food"]),
    "tiktok": ("acme", "Acme", ["acme.clips"]),
    "youtube": ("AcmeChannel", "Acme Channel", ["AcmeShorts"]),
}
DEMO_CLIPS = [
    ("Behind the scenes: product shoot", "A quick look at how we shot the spring campaign.",
     "https://cdn.example.com/clips/bts-spring.mp4", 42.0),
    ("Three tips for faster mornings", "Tips from the team, in under a minute.",
     "https://cdn.example.com/clips/morning-tips.mp4", 55.0),
    ("Customer story: Lena's bakery", "How a small bakery grew with short videos.",
     "https://cdn.example.com/clips/lena-bakery.mp4", 88.0),
    ("Launch teaser", "Something new is coming on Friday.",
     "https://cdn.example.com/clips/launch-teaser.mp4", 15.0),
]


def seed_demo_data(db) -> bool:
    """Add the demo data when the database has no clip and no account; True if added."""
    has_data = db.session.scalar(select(func.count()).select_from(Clip)) or db.session.scalar(
        select(func.count()).select_from(SocialAccount))
    if has_data:
        return False
    for platform, (handle, name, satellites) in DEMO_ACCOUNTS.items():
        main = create_account(db, AccountIn(platform=platform, handle=handle, display_name=name))
        for satellite in satellites:
            create_account(db, AccountIn(platform=platform, handle=satellite,
                                         display_name=satellite, parent_account_id=main.id))
    for title, description, media, duration in DEMO_CLIPS:
        create_clip(db, ClipIn(title=title, description=description, media=media,
                               duration_seconds=duration))
    return True
