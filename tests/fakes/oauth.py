"""Faithful local OAuth servers for Facebook (Instagram), TikTok and Google (YouTube), as WSGI apps.

Each speaks the OAuth part of ../shared/platforms.md: an authorize page a person approves or
denies in the browser (it redirects back with `code` and `state`, or `error=access_denied`),
single-use codes bound to the client and the exact redirect URI (and, for Google, the PKCE S256
challenge), the token endpoints in each platform's shape, refresh (TikTok rotates refresh tokens:
the old one dies when a new one is issued), `invalid_grant`, and revocation. Tokens live in a
shared `TokenBook`, whose `check` the platform API fakes take as their `token_check`:

    book = TokenBook(clock=time.time)
    tiktok = cascade(TikTokOAuthFake(book), TikTokFake(token_check=book.check))
    google = GoogleOAuthFake(book)                    # authorize, token, revoke and channels.list
    youtube = cascade(google, FakeYouTube(token_check=book.project))
    facebook = cascade(FacebookOAuthFake(book),       # dialog/oauth, /oauth/access_token, /me/...
                       InstagramFake(token_check=book.graph_check))

Counters: `fake.calls` (endpoint -> requests). Scripting: `book.revoke_subject(platform, subject)`
(the person removed the app: every token dies, refreshes answer invalid_grant),
`book.drop_scope(platform, subject, scope)` (later refreshes grant fewer scopes).
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from werkzeug.wrappers import Request, Response


@dataclass
class Grant:
    """One person's consent to one app: who, which scopes."""

    platform: str
    subject: str
    client_id: str
    scopes: list[str]
    revoked: bool = False


@dataclass
class Token:
    value: str
    grant: Grant
    expires_at: float
    kind: str  # access | refresh
    dead: bool = False


@dataclass
class Code:
    value: str
    grant: Grant
    redirect_uri: str
    expires_at: float
    challenge: str | None = None
    used: bool = False


class TokenBook:
    """Every code and token the OAuth fakes issued, shared with the API fakes."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, Code] = {}
        self.grants: list[Grant] = []
        self.lock = threading.Lock()

    def grant(self, platform: str, subject: str, client_id: str, scopes: list[str]) -> Grant:
        with self.lock:
            for grant in self.grants:
                if (grant.platform, grant.subject, grant.client_id) == (platform, subject,
                                                                        client_id):
                    grant.scopes, grant.revoked = list(scopes), False
                    return grant
            grant = Grant(platform, subject, client_id, list(scopes))
            self.grants.append(grant)
            return grant

    def find_grant(self, platform: str, subject: str) -> Grant:
        return next(g for g in self.grants if (g.platform, g.subject) == (platform, subject))

    def new_code(self, grant: Grant, redirect_uri: str, challenge: str | None = None) -> str:
        code = Code(secrets.token_urlsafe(24), grant, redirect_uri, self.clock() + 600, challenge)
        self.codes[code.value] = code
        return code.value

    def take_code(self, value: str, client_id: str, redirect_uri: str) -> Code | None:
        """The code, marked used; None when unknown, used, expired or for another client/URI."""
        with self.lock:
            code = self.codes.get(value)
            if code is None or code.used or code.expires_at < self.clock() or \
                    code.grant.client_id != client_id or code.redirect_uri != redirect_uri:
                if code is not None:
                    code.used = True  # a replayed code is spent for good (RFC 6749 4.1.2)
                return None
            code.used = True
            return code

    def issue(self, grant: Grant, kind: str, ttl: float, prefix: str) -> str:
        token = Token(prefix + secrets.token_urlsafe(24), grant, self.clock() + ttl, kind)
        self.tokens[token.value] = token
        return token.value

    def valid(self, value: str, kind: str = "access") -> Token | None:
        token = self.tokens.get(value)
        if token is None or token.kind != kind or token.dead or token.grant.revoked or \
                token.expires_at <= self.clock():
            return None
        return token

    def check(self, value: str) -> bool:
        """token_check for TikTokFake (and any fake that wants a bool)."""
        return self.valid(value) is not None

    def graph_check(self, value: str) -> str | None:
        """token_check for the Instagram Graph fake: None when valid, else why not."""
        token = self.tokens.get(value)
        if token is None or token.kind != "access":
            return "invalid"
        if token.dead or token.grant.revoked:
            return "revoked"
        return "expired" if token.expires_at <= self.clock() else None

    def project(self, value: str) -> str | None:
        """token_check for FakeYouTube: the Google client id is the project."""
        token = self.valid(value)
        return token.grant.client_id if token else None

    def kill(self, value: str) -> None:
        token = self.tokens.get(value)
        if token is not None:
            token.dead = True

    def revoke_subject(self, platform: str, subject: str) -> None:
        self.find_grant(platform, subject).revoked = True

    def drop_scope(self, platform: str, subject: str, scope: str) -> None:
        grant = self.find_grant(platform, subject)
        grant.scopes = [s for s in grant.scopes if s != scope]


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _consent_page(title: str, who: str, scopes: list[str], hidden: dict[str, str]) -> Response:
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in hidden.items())
    items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Signed in as {html.escape(who)}. The app asks "
            f"for:</p><ul>{items}</ul><form method=post>{fields}"
            '<button id="approve" name="decision" value="approve">Allow</button> '
            '<button id="deny" name="decision" value="deny">Cancel</button></form></body></html>')
    return Response(body, mimetype="text/html")


def _redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + separator + urlencode(params)})


class _OAuthFake:
    """What the three fakes share: the book, registered clients and the consent form."""

    platform = ""
    title = ""
    client_param = "client_id"
    authorize_path = ""

    def __init__(self, book: TokenBook, *, client_id: str = "test-client-id",
                 client_secret: str = "test-client-secret", subject: str = "subject-1",
                 redirect_uris: set[str] | None = None, access_ttl: float = 3600,
                 refresh_ttl: float = 180 * 86400):
        self.book = book
        self.client_id, self.client_secret = client_id, client_secret
        self.subject = subject  # who is signed in on the consent page
        self.redirect_uris = redirect_uris  # None: any (tests register the live server's)
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        self.token_delay = 0.0  # seconds each token-endpoint answer takes (to overlap callers)
        self.calls: Counter = Counter()

    def __call__(self, environ, start_response):
        request = Request(environ)
        handler = self.routes().get(request.path)
        if handler is None:
            return Response("not found", status=404)(environ, start_response)
        self.calls[request.path] += 1
        return handler(request)(environ, start_response)

    def routes(self) -> dict[str, Callable[[Request], Response]]:
        return {self.authorize_path: self._authorize}

    def scopes_of(self, raw: str) -> list[str]:
        return [s for s in raw.replace(",", " ").split() if s]

    def _authorize(self, request: Request) -> Response:
        args = request.values
        redirect_uri = args.get("redirect_uri", "")
        if args.get(self.client_param) != self.client_id or not redirect_uri or \
                (self.redirect_uris is not None and redirect_uri not in self.redirect_uris):
            # Platforms show an error page rather than redirect to an unregistered URI.
            return Response("invalid client or redirect_uri", status=400)
        if args.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type",
                                            "state": args.get("state", "")})
        problem = self.check_authorize(args)
        if problem:
            return _redirect(redirect_uri, {"error": "invalid_request",
                                            "error_description": problem,
                                            "state": args.get("state", "")})
        if request.method == "GET":
            return _consent_page(self.title, self.subject, self.scopes_of(args.get("scope", "")),
                                 {k: v for k, v in args.items(multi=False)})
        state = {"state": args["state"]} if args.get("state") else {}
        if args.get("decision") != "approve":
            return _redirect(redirect_uri, {**self.denied(), **state})
        # The person may untick scopes (TikTok, Google): the form's `granted_scope` says which.
        granted = request.form.get("granted_scope") or args.get("scope", "")
        grant = self.book.grant(self.platform, self.subject, self.client_id,
                                self.scopes_of(granted))
        code = self.book.new_code(grant, redirect_uri, args.get("code_challenge"))
        return _redirect(redirect_uri, {"code": code, **state})

    def check_authorize(self, args) -> str | None:
        return None

    def denied(self) -> dict[str, str]:
        return {"error": "access_denied", "error_description": "The user denied the request."}


class FacebookOAuthFake(_OAuthFake):
    """Facebook Login for Business: /{version}/dialog/oauth (the version prefix optional),
    GET /oauth/access_token (code, then fb_exchange_token), /me/accounts, /{ig-user-id}."""

    platform = "instagram"
    title = "Facebook: allow the app to manage your Instagram"
    authorize_path = "/dialog/oauth"

    # Graph paths work with a version prefix (/v24.0/oauth/access_token) or without one.
    VERSION = re.compile(r"^/v\d+\.\d+(?=/)")

    def __init__(self, book: TokenBook, *, ig_user_id: str = "17841400000000001",
                 username: str = "acme.reels", page_id: str = "104000000000001",
                 long_lived_ttl: float = 60 * 86400, **options):
        options.setdefault("access_ttl", 2 * 3600)
        options.setdefault("subject", ig_user_id)
        super().__init__(book, **options)
        self.ig_user_id, self.username, self.page_id = ig_user_id, username, page_id
        self.long_lived_ttl = long_lived_ttl

    def __call__(self, environ, start_response):
        environ = dict(environ, PATH_INFO=self.VERSION.sub("", environ.get("PATH_INFO", "")))
        request = Request(environ)
        if request.path == f"/{self.ig_user_id}" and request.method == "GET" and \
                request.args.get("fields") == "username":
            self.calls["ig_user"] += 1
            return self._ig_user(request)(environ, start_response)
        return super().__call__(environ, start_response)

    def routes(self):
        return {self.authorize_path: self._authorize, "/oauth/access_token": self._token,
                "/me/accounts": self._accounts}

    def denied(self):
        return {"error": "access_denied", "error_code": "200",
                "error_description": "Permissions error", "error_reason": "user_denied"}

    @staticmethod
    def _error(message: str, code: int, subcode: int | None = None, status: int = 400):
        error = {"message": message, "type": "OAuthException", "code": code,
                 "fbtrace_id": secrets.token_urlsafe(8)}
        if subcode:
            error["error_subcode"] = subcode
        return _json({"error": error}, status)

    def _token(self, request: Request) -> Response:
        args = request.args
        if request.method != "GET":
            return self._error("Unsupported method", 100)
        if args.get("client_id") != self.client_id or \
                args.get("client_secret") != self.client_secret:
            return self._error("Error validating client secret.", 1)
        if args.get("grant_type") == "fb_exchange_token":
            token = self.book.valid(args.get("fb_exchange_token", ""))
            if token is None:
                return self._error("Error validating access token: Session has expired.", 190,
                                   463)
            value = self.book.issue(token.grant, "access", self.long_lived_ttl, "EAAL")
            return _json({"access_token": value, "token_type": "bearer",
                          "expires_in": int(self.long_lived_ttl)})
        code = self.book.take_code(args.get("code", ""), self.client_id,
                                   args.get("redirect_uri", ""))
        if code is None:
            return self._error("This authorization code has been used.", 100, 36009)
        value = self.book.issue(code.grant, "access", self.access_ttl, "EAAS")
        return _json({"access_token": value, "token_type": "bearer",
                      "expires_in": int(self.access_ttl)})

    def _bearer(self, request: Request):
        """The Graph API's `access_token` parameter (or an `Authorization: OAuth|Bearer` header)."""
        header = request.headers.get("Authorization", "")
        value = request.values.get("access_token") or \
            (header.split(" ", 1)[1] if " " in header else "")
        return self.book.valid(value)

    def _accounts(self, request: Request) -> Response:
        token = self._bearer(request)
        if token is None:
            return self._error("Error validating access token: Session has expired.", 190, 463,
                               status=401)
        if request.args.get("fields") != "instagram_business_account":
            return _json({"data": [{"id": self.page_id}]})
        return _json({"data": [{"id": self.page_id,
                                "instagram_business_account": {"id": self.ig_user_id}}]})

    def _ig_user(self, request: Request) -> Response:
        if self._bearer(request) is None:
            return self._error("Error validating access token: Session has expired.", 190, 463,
                               status=401)
        return _json({"username": self.username, "id": self.ig_user_id})


class TikTokOAuthFake(_OAuthFake):
    """TikTok Login Kit (web): /v2/auth/authorize/ with client_key, POST /v2/oauth/token/ (code
    and rotating refresh), POST /v2/oauth/revoke/. Answers are flat, errors
    `{"error", "error_description", "log_id"}`."""

    platform = "tiktok"
    title = "TikTok: authorize the app"
    client_param = "client_key"
    authorize_path = "/v2/auth/authorize/"

    def __init__(self, book: TokenBook, **options):
        options.setdefault("access_ttl", 2 * 3600)
        options.setdefault("client_id", "test-client-key")
        options.setdefault("subject", "open-id-0001")
        super().__init__(book, **options)
        self.refreshes = 0  # refresh grants that issued a new pair

    def routes(self):
        return {self.authorize_path: self._authorize, "/v2/oauth/token/": self._token,
                "/v2/oauth/revoke/": self._revoke}

    @staticmethod
    def _error(error: str, description: str, status: int = 400) -> Response:
        return _json({"error": error, "error_description": description,
                      "log_id": secrets.token_hex(8)}, status)

    def _client_ok(self, form) -> bool:
        return form.get("client_key") == self.client_id and \
            form.get("client_secret") == self.client_secret

    def _pair(self, grant: Grant) -> Response:
        access = self.book.issue(grant, "access", self.access_ttl, "act.")
        refresh = self.book.issue(grant, "refresh", self.refresh_ttl, "rft.")
        return _json({"open_id": grant.subject, "scope": ",".join(grant.scopes),
                      "access_token": access, "expires_in": int(self.access_ttl),
                      "refresh_token": refresh, "refresh_expires_in": int(self.refresh_ttl),
                      "token_type": "Bearer"})

    def _token(self, request: Request) -> Response:
        time.sleep(self.token_delay)
        form = request.form
        if request.method != "POST" or \
                request.mimetype != "application/x-www-form-urlencoded":
            return self._error("invalid_request", "The request parameters are malformed.")
        if not self._client_ok(form):
            return self._error("invalid_client", "Client key or secret is incorrect.", 401)
        if form.get("grant_type") == "authorization_code":
            code = self.book.take_code(form.get("code", ""), self.client_id,
                                       form.get("redirect_uri", ""))
            if code is None:
                return self._error("invalid_grant", "Authorization code is expired or was used.")
            return self._pair(code.grant)
        if form.get("grant_type") == "refresh_token":
            with self.book.lock:
                token = self.book.valid(form.get("refresh_token", ""), "refresh")
                if token is None:
                    return self._error("invalid_grant", "Refresh token is invalid or expired.")
                token.dead = True  # rotation: the old refresh token stops working
                self.refreshes += 1
            return self._pair(token.grant)
        return self._error("unsupported_grant_type", "The grant type is not supported.")

    def _revoke(self, request: Request) -> Response:
        form = request.form
        if not self._client_ok(form):
            return self._error("invalid_client", "Client key or secret is incorrect.", 401)
        token = self.book.tokens.get(form.get("token", ""))
        if token is None:
            return self._error("invalid_request", "The token is invalid.")
        token.grant.revoked = True
        return Response(status=200)


class GoogleOAuthFake(_OAuthFake):
    """Google OAuth 2.0 for web servers: /o/oauth2/v2/auth (PKCE S256, access_type=offline),
    POST /token, POST /revoke, and YouTube's GET /youtube/v3/channels?part=snippet&mine=true."""

    platform = "youtube"
    title = "Google: choose what the app may access"
    authorize_path = "/o/oauth2/v2/auth"

    def __init__(self, book: TokenBook, *, channel_id: str = "UCfakechannel00000000001",
                 channel_title: str = "Acme Shorts", custom_url: str = "@acmeshorts", **options):
        options.setdefault("subject", channel_id)
        super().__init__(book, **options)
        self.channel_id, self.channel_title, self.custom_url = channel_id, channel_title, \
            custom_url

    def routes(self):
        return {self.authorize_path: self._authorize, "/token": self._token,
                "/revoke": self._revoke, "/youtube/v3/channels": self._channels}

    def check_authorize(self, args) -> str | None:
        if args.get("code_challenge") and args.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256"
        return None

    @staticmethod
    def _error(error: str, description: str, status: int = 400) -> Response:
        return _json({"error": error, "error_description": description}, status)

    def _token(self, request: Request) -> Response:
        form = request.form
        if request.method != "POST":
            return self._error("invalid_request", "POST required")
        if form.get("client_id") != self.client_id or \
                form.get("client_secret") != self.client_secret:
            return self._error("invalid_client", "The OAuth client was not found.", 401)
        if form.get("grant_type") == "authorization_code":
            code = self.book.take_code(form.get("code", ""), self.client_id,
                                       form.get("redirect_uri", ""))
            if code is None:
                return self._error("invalid_grant", "Malformed auth code.")
            if code.challenge and not compare_s256_code_challenge(
                    form.get("code_verifier", ""), code.challenge):
                return self._error("invalid_grant", "Invalid code verifier.")
            access = self.book.issue(code.grant, "access", self.access_ttl, "ya29.")
            refresh = self.book.issue(code.grant, "refresh", self.refresh_ttl, "1//")
            return _json({"access_token": access, "expires_in": int(self.access_ttl),
                          "refresh_token": refresh, "scope": " ".join(code.grant.scopes),
                          "token_type": "Bearer"})
        if form.get("grant_type") == "refresh_token":
            token = self.book.valid(form.get("refresh_token", ""), "refresh")
            if token is None:
                return self._error("invalid_grant", "Token has been expired or revoked.")
            access = self.book.issue(token.grant, "access", self.access_ttl, "ya29.")
            return _json({"access_token": access, "expires_in": int(self.access_ttl),
                          "scope": " ".join(token.grant.scopes), "token_type": "Bearer"})
        return self._error("unsupported_grant_type", "Invalid grant_type.")

    def _revoke(self, request: Request) -> Response:
        token = self.book.tokens.get(request.form.get("token", ""))
        if request.method != "POST" or token is None:
            return self._error("invalid_token", "Token expired or revoked")
        token.grant.revoked = True
        return _json({})

    def _channels(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        token = self.book.valid(header[7:] if header.startswith("Bearer ") else "")
        if token is None:
            return _json({"error": {"code": 401, "message": "Invalid Credentials",
                                    "errors": [{"reason": "authError",
                                                "message": "Invalid Credentials"}]}}, 401)
        if request.args.get("mine") != "true" or "snippet" not in request.args.get("part", ""):
            return _json({"kind": "youtube#channelListResponse", "items": []})
        return _json({"kind": "youtube#channelListResponse", "items": [{
            "kind": "youtube#channel", "id": self.channel_id,
            "snippet": {"title": self.channel_title, "customUrl": self.custom_url,
                        "thumbnails": {"default": {
                            "url": f"https://yt3.ggpht.example/{self.channel_id}=s88"}}}}]})
