"""A small OpenID Connect provider for the single sign-on tests, run as a
process of its own (``python -m tests.oidc_provider PORT``): it speaks the
protocol over HTTP as a real provider does, and knows nothing of jutella.

- ``GET /.well-known/openid-configuration``: discovery.
- ``GET /authorize``: checks the client, its registered redirect URI and
  PKCE (``S256`` only), then shows a sign-in form (a user name, no
  password); ``POST /authorize`` signs that user in and sends the browser
  back with a one-time code (or ``error=access_denied`` with ``deny``).
- ``POST /token``: the code for an access token and an ID token (RS256,
  ``kid`` in the header), after client authentication (``client_secret_basic``
  or ``client_secret_post``), the same redirect URI and the PKCE verifier
  whose S256 is the challenge (Authlib's ``create_s256_code_challenge``).
- ``GET /jwks``: the public keys. ``GET /userinfo``: the user's claims.

What a test sets up, over HTTP too: ``PUT /_test/clients/{id}`` (secret,
redirect URIs), ``PUT /_test/users/{name}`` (sub, email, name, groups,
amr, acr, whether the groups are only in userinfo), ``PUT /_test/tamper``
(the next ID token is spoiled: signed with a key not published,
another audience, nonce or issuer, already expired; or made with a new
key published from then on), ``GET /_test/log`` (what the authorisation and
token requests carried).
"""

from __future__ import annotations

import base64
import html
import secrets
import sys
import time
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route


class Provider:
    def __init__(self, issuer: str):
        self.issuer = issuer
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})]
        self.clients: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, str] = {}
        self.tamper: str | None = None
        self.log: list[dict[str, Any]] = []

    # -- discovery and keys --------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        i = self.issuer
        return JSONResponse({
            "issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks", "userinfo_endpoint": f"{i}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
            "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups", "amr", "acr"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet(self.keys).as_dict(private=False))

    # -- the authorisation endpoint ---------------------------------------------------
    def _check(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        """(a problem shown here, not redirected), (an error to redirect with)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return "unknown client", None
        if params.get("redirect_uri") not in client["redirect_uris"]:
            return "redirect_uri not registered", None
        if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
            return None, "invalid_request"
        if params.get("code_challenge_method") != "S256" or len(params.get("code_challenge", "")) < 43:
            return None, "invalid_request"
        return None, None

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        problem, error = self._check(params)
        if problem:
            return HTMLResponse(f"<h1>{html.escape(problem)}</h1>", status_code=400)
        if error:
            return self._back(params, {"error": error})
        if request.method == "GET":
            self.log.append({"endpoint": "authorize", **params})
            return self._form(params)
        form = await request.form()
        if form.get("deny"):
            return self._back(params, {"error": "access_denied"})
        name = str(form.get("username", ""))
        if name not in self.users:
            return self._form(params, "No such user.")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"params": params, "user": name, "expires": time.time() + 60}
        return self._back(params, {"code": code})

    def _form(self, params: dict[str, str], problem: str = "") -> Response:
        note = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
        return HTMLResponse(
            "<!doctype html><title>Test identity provider</title><h1>Test identity provider</h1>" + note +
            '<form method="post"><label>User name <input name="username" data-testid="idp-username"></label>'
            '<button type="submit" data-testid="idp-submit">Sign in</button>'
            '<button type="submit" name="deny" value="1">Cancel</button></form>')

    def _back(self, params: dict[str, str], answer: dict[str, str]) -> Response:
        if params.get("state"):
            answer["state"] = params["state"]
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=302)

    # -- the token endpoint -------------------------------------------------------------
    def _client(self, request: Request, form: dict[str, str]) -> tuple[str | None, str]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            method = "client_secret_basic"
        else:
            client_id, secret, method = form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client["secret"], secret):
            return None, method
        return client_id, method

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id, method = self._client(request, form)
        self.log.append({"endpoint": "token", "auth_method": method,
                         **{k: v for k, v in form.items() if k != "client_secret"}})
        if client_id is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None or grant["expires"] < time.time():
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        params = grant["params"]
        if params["client_id"] != client_id or params["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if create_s256_code_challenge(form.get("code_verifier", "")) != params["code_challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self.access[access_token] = grant["user"]
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                             "id_token": self._id_token(grant["user"], params, access_token)},
                            headers={"Cache-Control": "no-store"})

    def _claims(self, name: str) -> dict[str, Any]:
        user = self.users[name]
        claims = {"sub": user["sub"], "email": user.get("email"), "email_verified": user.get("email_verified", True),
                  "name": user.get("name"), "groups": user.get("groups", [])}
        return {k: v for k, v in claims.items() if v is not None}

    def _id_token(self, name: str, params: dict[str, str], access_token: str) -> str:
        user, now = self.users[name], int(time.time())
        claims: dict[str, Any] = {**self._claims(name), "iss": self.issuer, "aud": params["client_id"],
                                  "iat": now, "exp": now + 300, "auth_time": now, "nonce": params.get("nonce"),
                                  "at_hash": create_half_hash(access_token, "RS256").decode()}
        if user.get("groups_in_userinfo"):
            claims.pop("groups", None)
        for key in ("amr", "acr"):
            if user.get(key) is not None:
                claims[key] = user[key]
        key = self.keys[-1]
        mode, self.tamper = self.tamper, None
        if mode == "foreign_key":  # the same kid, a key nobody published
            key = RSAKey.generate_key(2048, parameters={"kid": key.kid})
        elif mode == "aud":
            claims["aud"] = "another-client"
        elif mode == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif mode == "iss":
            claims["iss"] = "http://127.0.0.1:1"
        elif mode == "expired":
            claims.update(iat=now - 900, exp=now - 600)
        elif mode == "rotate":  # a new key, published from now on
            key = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self.keys) + 1}", "use": "sig"})
            self.keys.append(key)
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    async def userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        name = self.access.get(token) if scheme == "Bearer" else None
        if name is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self._claims(name))

    # -- what the tests set up ------------------------------------------------------------
    async def put_client(self, request: Request) -> Response:
        self.clients[request.path_params["client_id"]] = await request.json()
        return JSONResponse({"ok": True})

    async def put_user(self, request: Request) -> Response:
        self.users[request.path_params["name"]] = await request.json()
        return JSONResponse({"ok": True})

    async def put_tamper(self, request: Request) -> Response:
        self.tamper = (await request.json()).get("mode")
        return JSONResponse({"ok": True})

    async def get_log(self, request: Request) -> Response:
        return JSONResponse(self.log)


def app(issuer: str) -> Starlette:
    p = Provider(issuer)
    return Starlette(routes=[
        Route("/.well-known/openid-configuration", p.discovery),
        Route("/jwks", p.jwks),
        Route("/authorize", p.authorize, methods=["GET", "POST"]),
        Route("/token", p.token, methods=["POST"]),
        Route("/userinfo", p.userinfo),
        Route("/_test/clients/{client_id}", p.put_client, methods=["PUT"]),
        Route("/_test/users/{name}", p.put_user, methods=["PUT"]),
        Route("/_test/tamper", p.put_tamper, methods=["PUT"]),
        Route("/_test/log", p.get_log),
    ])


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(app(f"http://127.0.0.1:{port}"), host="127.0.0.1", port=port, log_level="warning")
