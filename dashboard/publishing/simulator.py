"""Platform simulators: realistic latency, failures, ids and URLs, with no network.

Latency, failure rate and seed are settings (SIMULATOR_MIN_DELAY, SIMULATOR_MAX_DELAY,
SIMULATOR_FAILURE_RATE, SIMULATOR_SEED) so tests and benchmarks can be deterministic.
"""

from __future__ import annotations

import random
import string
import threading
import time
from dataclasses import dataclass

from .outcome import ErrorKind, PlatformOutcome, PublishJob

_SHORTCODE_ALPHABET = string.ascii_letters + string.digits + "_-"


@dataclass(frozen=True)
class SimulatedFailure:
    message: str
    kind: ErrorKind
    auth_error: bool = False


# Messages as the platforms word them (shared/platforms.md), each tagged by what a retry can do.
FAILURES: dict[str, tuple[SimulatedFailure, ...]] = {
    "instagram": (
        SimulatedFailure("(#9) Application request limit reached: the account reached its limit "
                         "of 50 API-published posts in 24 hours (subcode 2207042)", "transient"),
        SimulatedFailure("(#190) Error validating access token: Session has expired", "permanent",
                         auth_error=True),
        SimulatedFailure("Media processing failed: the container status is ERROR", "permanent"),
        SimulatedFailure("(#2) Service temporarily unavailable", "transient"),
        SimulatedFailure("Timed out waiting for the media_publish response", "unknown"),
    ),
    "tiktok": (
        SimulatedFailure("rate_limit_exceeded: too many requests for this access token", "transient"),
        SimulatedFailure("access_token_invalid: the access token is invalid or has expired",
                         "permanent", auth_error=True),
        SimulatedFailure("spam_risk_too_many_posts: the creator has reached today's post limit",
                         "transient"),
        SimulatedFailure("invalid_file_upload: the file does not meet the upload requirements",
                         "permanent"),
        SimulatedFailure("internal_error: TikTok server error, try again later", "transient"),
    ),
    "youtube": (
        SimulatedFailure("quotaExceeded: the request cannot be completed because the project "
                         "exceeded its quota", "transient"),
        SimulatedFailure("authError: invalid credentials, the access token has expired",
                         "permanent", auth_error=True),
        SimulatedFailure("uploadLimitExceeded: the user has exceeded the number of videos they "
                         "may upload", "transient"),
        SimulatedFailure("backendError: the upload connection was reset after the bytes were "
                         "sent", "unknown"),
        SimulatedFailure("invalidTitle: the video title is invalid", "permanent"),
    ),
}


def instagram_ids(rng: random.Random, job: PublishJob) -> tuple[str, str]:
    """A Reel's media id (17-18 digits) and its /reel/<shortcode>/ URL."""
    media_id = str(rng.randrange(17_000_000_000_000_000, 18_000_000_000_000_000))
    shortcode = "".join(rng.choice(_SHORTCODE_ALPHABET) for _ in range(11))
    return media_id, f"https://www.instagram.com/reel/{shortcode}/"


def tiktok_ids(rng: random.Random, job: PublishJob) -> tuple[str, str]:
    """A 19-digit video id and its URL under the account's @handle."""
    video_id = str(rng.randrange(7_000_000_000_000_000_000, 7_999_999_999_999_999_999))
    username = job.account_handle or "simulated.creator"
    return video_id, f"https://www.tiktok.com/@{username.lstrip('@')}/video/{video_id}"


def youtube_ids(rng: random.Random, job: PublishJob) -> tuple[str, str]:
    """An 11-character video id and its /shorts/ URL."""
    video_id = "".join(rng.choice(_SHORTCODE_ALPHABET) for _ in range(11))
    return video_id, f"https://www.youtube.com/shorts/{video_id}"


ID_MAKERS = {"instagram": instagram_ids, "tiktok": tiktok_ids, "youtube": youtube_ids}


@dataclass(frozen=True)
class SimulatorSettings:
    min_delay: float = 0.1
    max_delay: float = 0.3
    failure_rate: float = 0.1
    seed: int | None = None
    # Which kinds of failure to draw from (tests pin one to make a path deterministic):
    # transient, permanent, unknown, and auth (a refused token, permanent too).
    failure_kinds: tuple[str, ...] = ("transient", "permanent", "auth", "unknown")

    @classmethod
    def from_config(cls, config) -> SimulatorSettings:
        return cls(
            config["SIMULATOR_MIN_DELAY"],
            config["SIMULATOR_MAX_DELAY"],
            config["SIMULATOR_FAILURE_RATE"],
            config["SIMULATOR_SEED"],
            tuple(config.get("SIMULATOR_FAILURE_KINDS") or cls.failure_kinds),
        )


class SeededRandom:
    """One random stream per seed for the whole process, shared by threads under a lock.

    A fresh seeded generator per call would hand every post the same id.
    """

    _streams: dict[int | None, random.Random] = {}
    _lock = threading.Lock()

    @classmethod
    def for_seed(cls, seed: int | None) -> random.Random:
        with cls._lock:
            if seed not in cls._streams:
                cls._streams[seed] = random.Random(seed)
            return cls._streams[seed]


class PlatformSimulator:
    """Behaves like one platform's API: sleeps, sometimes fails, returns realistic ids."""

    name = "simulator"

    def __init__(self, platform: str, settings: SimulatorSettings):
        self.platform = platform
        self.settings = settings

    def publish(self, job: PublishJob) -> PlatformOutcome:
        """Simulate one publish: latency from the settings, then a success or a failure."""
        rng = SeededRandom.for_seed(self.settings.seed)
        with SeededRandom._lock:
            delay = rng.uniform(self.settings.min_delay, self.settings.max_delay)
            fails = rng.random() < self.settings.failure_rate
            kinds = self.settings.failure_kinds
            candidates = [f for f in FAILURES[self.platform]
                          if ("auth" in kinds if f.auth_error else f.kind in kinds)]
            failure = rng.choice(candidates or FAILURES[self.platform])
            post_id, url = ID_MAKERS[self.platform](rng, job)
        if delay > 0:
            time.sleep(delay)
        if fails:
            return PlatformOutcome(False, error_message=failure.message, error_kind=failure.kind,
                                   auth_error=failure.auth_error)
        return PlatformOutcome(True, external_post_id=post_id, external_url=url)
