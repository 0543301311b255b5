"""The HTTP side on `--httpPort`: the stand-in cloud login page and the binary's login callback (§7, §10).

The page's field names and the `.error` element match `login.selectors` in config.py, so the
selenium flow drives it exactly as it would drive the real page.
"""

from __future__ import annotations

from tornado.escape import xhtml_escape
from tornado.web import RequestHandler

from lingma_proxy.simulator.auth import Auth, LoginError

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{body}
</body></html>
"""

_FORM = """{error}<form method="post" action="/lingma/login">
  <input type="hidden" name="nonce" value="{nonce}">
  <label>Username <input name="username" type="text" value="{username}" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>"""


def render_page(title: str, body: str) -> str:
    return _PAGE.format(title=xhtml_escape(title), body=body)


class LoginPageHandler(RequestHandler):
    def initialize(self, auth: Auth) -> None:  # type: ignore[override]
        self._auth = auth

    def get(self) -> None:
        self._form(self.get_query_argument("nonce", ""), username="", error="")

    def post(self) -> None:
        nonce = self.get_body_argument("nonce", "")
        username = self.get_body_argument("username", "")
        if self._auth.check_password(username, self.get_body_argument("password", "")):
            self.redirect(self._auth.callback_path(nonce, username))
            return
        self._form(nonce, username, error="Invalid username or password")

    def _form(self, nonce: str, username: str, error: str) -> None:
        error_html = f'<div class="error">{xhtml_escape(error)}</div>\n' if error else ""
        body = _FORM.format(error=error_html, nonce=xhtml_escape(nonce), username=xhtml_escape(username))
        self.write(render_page("Sign in to Lingma", body))


class LoginCallbackHandler(RequestHandler):
    def initialize(self, auth: Auth) -> None:  # type: ignore[override]
        self._auth = auth

    def get(self) -> None:
        try:
            user = self._auth.complete_login(
                self.get_query_argument("state", ""),
                self.get_query_argument("auth", ""),
                self.get_query_argument("token", ""),
            )
        except LoginError as exc:
            self.set_status(400)
            self.write(render_page("Login failed", f"<p class=\"error\">{xhtml_escape(str(exc))}</p>"))
            return
        body = f"<p>Login successful. Signed in as {xhtml_escape(user.name)}; you can close this page.</p>"
        self.write(render_page("Login successful", body))
