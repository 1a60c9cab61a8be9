"""The bundled demo target: a small "customer portal" that castra's example automation
logs into with a browser step and queries with an http step.

    python examples/demo_target.py --port 8077

- GET  /login                   HTML form (#username, #password, button[type=submit])
- POST /login                   analyst / $DEMO_PORTAL_PASSWORD -> session cookie -> /dashboard
- GET  /dashboard?host=WS-0142  needs the session; #dashboard, an asset table, #owner
- GET  /api/v1/hosts/{hostname} needs `Authorization: Bearer $DEMO_API_KEY`; JSON

It is a demo, not a pattern to copy: sessions live in memory, and there is no CSRF token.
It must never be exposed beyond localhost.
"""

from __future__ import annotations

import argparse
import hmac
import html
import os
import secrets
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

USERNAME = "analyst"
DEFAULT_PASSWORD = "correct horse battery staple"
DEFAULT_API_KEY = "demo-api-key-4c1f"
SESSION_COOKIE = "portal_session"


@dataclass(frozen=True)
class Host:
    hostname: str
    owner: str
    email: str
    department: str
    os: str
    ip: str
    score: int
    last_seen: str

    @property
    def level(self) -> str:
        return "high" if self.score >= 75 else "medium" if self.score >= 40 else "low"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["score"]
        data["risk"] = {"score": self.score, "level": self.level}
        return data


HOSTS = {
    h.hostname: h
    for h in [
        Host("WS-0142", "Dana Whitfield", "dana.whitfield@northwind.example", "Finance",
             "Windows 11 Enterprise 23H2", "10.20.4.142", 87, "2026-03-11T08:41:17Z"),
        Host("WS-0178", "Marcus Oyelaran", "marcus.oyelaran@northwind.example", "Engineering",
             "macOS 14.5 Sonoma", "10.20.6.178", 34, "2026-03-11T08:12:03Z"),
        Host("WS-0207", "Elena Marchetti", "elena.marchetti@northwind.example", "Human Resources",
             "Windows 10 Enterprise 22H2", "10.20.4.207", 71, "2026-03-10T17:55:42Z"),
        Host("LT-0311", "Tomasz Wieczorek", "tomasz.wieczorek@northwind.example", "Sales",
             "Windows 11 Pro 23H2", "10.40.1.31", 18, "2026-03-09T21:07:29Z"),
        Host("SRV-DB-02", "Priya Raman", "priya.raman@northwind.example", "IT Operations",
             "Ubuntu 22.04.4 LTS", "10.10.2.12", 62, "2026-03-11T08:44:51Z"),
    ]
}  # fmt: skip

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f6f8; color: #1d2630; }
header { background: #1f3a5f; color: #fff; padding: 0.8rem 1.5rem; display: flex;
         justify-content: space-between; align-items: center; }
header a { color: #cfe0f5; }
main { max-width: 60rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem;
       border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
label { display: block; margin-top: 0.8rem; }
input { padding: 0.4rem; width: 16rem; }
button { margin-top: 1rem; padding: 0.45rem 1.2rem; background: #1f3a5f; color: #fff;
         border: 0; border-radius: 4px; cursor: pointer; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { text-align: left; padding: 0.4rem 0.6rem; border-bottom: 1px solid #e2e6ea; }
.error { color: #b3261e; }
.high { color: #b3261e; font-weight: 600; } .medium { color: #a86200; } .low { color: #2e7d32; }
.selected { background: #fff8e1; }
"""


def _page(title: str, body: str, user: str | None = None) -> str:
    who = f'{html.escape(user)} · <a href="/logout">Sign out</a>' if user else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} · Northwind customer portal</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<header><strong>Northwind customer portal</strong><span>{who}</span></header>"
        f"<main>{body}</main></body></html>"
    )


def _problem(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers or None,
    )


def _safe_next(target: str) -> str:
    # Only same-site paths: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/dashboard"


def create_app(password: str | None = None, api_key: str | None = None) -> Starlette:
    """The portal; credentials default to $DEMO_PORTAL_PASSWORD and $DEMO_API_KEY."""
    password = password or os.environ.get("DEMO_PORTAL_PASSWORD", DEFAULT_PASSWORD)
    api_key = api_key or os.environ.get("DEMO_API_KEY", DEFAULT_API_KEY)
    sessions: dict[str, str] = {}

    def current_user(request: Request) -> str | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE, ""))

    async def index(request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=303)

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        next_path = _safe_next(request.query_params.get("next", "/dashboard"))
        message = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
        body = f"""
        <h1>Sign in</h1>{message}
        <form method="post" action="/login?next={quote(next_path)}">
          <label for="username">Username</label>
          <input id="username" name="username" autocomplete="username" required>
          <label for="password">Password</label>
          <input id="password" name="password" type="password"
                 autocomplete="current-password" required>
          <div><button type="submit">Sign in</button></div>
        </form>"""
        return HTMLResponse(_page("Sign in", body), status_code=status)

    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        username = form.get("username", [""])[0]
        given = form.get("password", [""])[0]
        ok_user = hmac.compare_digest(username.encode(), USERNAME.encode())
        ok_password = hmac.compare_digest(given.encode(), password.encode())
        if not (ok_user and ok_password):
            return await login_form(request, "Invalid username or password.", status=401)
        token = secrets.token_urlsafe(24)
        sessions[token] = username
        target = _safe_next(request.query_params.get("next", "/dashboard"))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/")
        return response

    async def logout(request: Request) -> Response:
        sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def dashboard(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)
        wanted = request.query_params.get("host", "").strip().upper()
        selected = HOSTS.get(wanted)
        if selected:
            summary = (
                f'<p>Owner of <strong id="hostname">{html.escape(selected.hostname)}</strong>: '
                f'<strong id="owner">{html.escape(selected.owner)}</strong> '
                f"({html.escape(selected.department)})</p>"
            )
        elif wanted:
            summary = (
                f'<p id="not-found" class="error">No asset named {html.escape(wanted)}.</p>'
                '<p hidden>Owner: <strong id="owner"></strong></p>'
            )
        else:
            summary = '<p>Search an asset to see its owner.</p><strong id="owner" hidden></strong>'
        rows = "".join(
            f'<tr class="{"selected" if h is selected else ""}">'
            f"<td>{h.hostname}</td><td>{html.escape(h.owner)}</td><td>{h.department}</td>"
            f'<td>{h.os}</td><td>{h.ip}</td><td class="{h.level}">{h.score} ({h.level})</td>'
            f"<td>{h.last_seen}</td></tr>"
            for h in HOSTS.values()
        )
        body = f"""
        <section id="dashboard">
          <h1>Assets</h1>
          <form method="get" action="/dashboard">
            <input id="host" name="host" placeholder="Hostname, e.g. WS-0142"
                   value="{html.escape(wanted)}"> <button type="submit">Look up</button>
          </form>
          {summary}
          <table id="assets">
            <thead><tr><th>Hostname</th><th>Owner</th><th>Department</th><th>OS</th>
            <th>IP</th><th>Risk</th><th>Last seen</th></tr></thead>
            <tbody>{rows}</tbody>
          </table>
        </section>"""
        return HTMLResponse(_page("Assets", body, user))

    async def api_host(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), api_key.encode()):
            return _problem(
                401,
                "Unauthorized",
                "A valid API key is required: Authorization: Bearer <key>.",
                **{"WWW-Authenticate": 'Bearer realm="portal-api"'},
            )
        hostname = request.path_params["hostname"].upper()
        host = HOSTS.get(hostname)
        if host is None:
            return _problem(404, "Not Found", f"No host named {hostname}.")
        return JSONResponse(host.to_json())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout),
            Route("/dashboard", dashboard),
            Route("/api/v1/hosts/{hostname}", api_host),
            Route("/healthz", healthz),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8077)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
